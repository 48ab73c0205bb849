//! What every Redis-backed component (the step queue, rate limits, leases,
//! breakers) shares: its Lua scripts, loaded once and run by digest in one
//! round trip, and, for test suites, removing the keys a test wrote.
#![forbid(unsafe_code)]

use std::marker::PhantomData;

use fred::clients::Pool;
use fred::error::Error as RedisError;
use fred::prelude::{ClientLike, KeysInterface, LuaInterface, Value};

/// A component's scripts: one variant each, numbered from 0 in
/// declaration order.
pub trait Script: Copy + Send + Sync + 'static {
    /// Every script, in declaration order.
    const ALL: &'static [Self];

    /// The script's Lua source.
    fn source(self) -> &'static str;

    /// The script's place in [`Script::ALL`].
    fn index(self) -> usize;
}

/// The scripts' SHA1 digests, learnt from `SCRIPT LOAD`. A digest depends
/// only on the source, so it stays valid when Redis restarts and forgets the
/// script; then the script is loaded again and the call repeated.
pub struct Scripts<S> {
    digests: Vec<String>,
    scripts: PhantomData<S>,
}

impl<S: Script> Scripts<S> {
    pub async fn load(pool: &Pool) -> Result<Self, RedisError> {
        let mut digests = Vec::with_capacity(S::ALL.len());
        for script in S::ALL {
            digests.push(
                pool.next()
                    .script_load::<String, _>(script.source())
                    .await?,
            );
        }
        Ok(Self {
            digests,
            scripts: PhantomData,
        })
    }

    /// Runs `script` on `keys` with `args`: EVALSHA, and on NOSCRIPT load
    /// it again and repeat.
    pub async fn run(
        &self,
        pool: &Pool,
        script: S,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value, RedisError> {
        let digest = &self.digests[script.index()];
        let client = pool.next();
        match client
            .evalsha::<Value, _, _, _>(digest.as_str(), keys.clone(), args.clone())
            .await
        {
            Err(error) if error.details().contains("NOSCRIPT") => {
                client.script_load::<String, _>(script.source()).await?;
                client.evalsha(digest.as_str(), keys, args).await
            }
            result => result,
        }
    }
}

/// For test suites: removing what a test wrote. Compiled into every build,
/// like `tyboo_store::testing`.
pub mod testing {
    use fred::prelude::{Builder, Config};

    use super::*;

    /// Deletes every key under `prefix`.
    pub async fn delete_keys(url: &str, prefix: &str) {
        let client = Builder::from_config(Config::from_url(url).expect("redis url"))
            .build()
            .expect("redis client");
        client.init().await.expect("connect to redis");
        let mut cursor = "0".to_owned();
        loop {
            let page: Value = client
                .scan_page(cursor.as_str(), format!("{prefix}:*"), Some(500), None)
                .await
                .expect("scan");
            let mut page = page.into_array();
            let keys: Vec<String> = page
                .pop()
                .map(Value::into_array)
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_string)
                .collect();
            cursor = page
                .first()
                .and_then(Value::as_string)
                .expect("scan cursor");
            if !keys.is_empty() {
                let _: i64 = client.del(keys).await.expect("delete test keys");
            }
            if cursor == "0" {
                break;
            }
        }
        client.quit().await.expect("quit");
    }
}
