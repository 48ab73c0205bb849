//! What every Redis-backed component (the step queue, rate limits, leases,
//! breakers) shares: its Lua scripts, loaded once and run by digest in one
//! round trip, how a client is built and connected, and, for test suites,
//! removing the keys a test wrote.
#![forbid(unsafe_code)]

use std::marker::PhantomData;
use std::time::Duration;

use fred::clients::Pool;
use fred::error::Error as RedisError;
use fred::prelude::{
    Builder, ClientLike, Config, KeysInterface, LuaInterface, ReconnectPolicy, Value,
};

/// A client builder on `url` whose connection attempts and commands time out
/// after `timeout`, and which reconnects for ever: a process outlives a Redis
/// restart and carries on.
pub fn builder(url: &str, timeout: Duration) -> Result<Builder, RedisError> {
    let mut builder = Builder::from_config(Config::from_url(url)?);
    builder
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
        .with_connection_config(|connection| {
            connection.connection_timeout = timeout;
            connection.internal_command_timeout = timeout;
        })
        .with_performance_config(|performance| {
            performance.default_command_timeout = timeout;
        });
    Ok(builder)
}

/// Connects `pool`, giving up after `timeout`; the error says why, as the
/// caller's "unavailable" message.
pub async fn connect_within(pool: &Pool, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, pool.init()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no connection to redis within {timeout:?}")),
    }
}

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
