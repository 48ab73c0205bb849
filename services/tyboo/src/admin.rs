//! `tyboo admin …`: the operator's commands. They open tenancy's database in
//! this process with the same configuration as every other subcommand, so
//! they work whether or not the platform is running, and every one of them
//! is written to the audit log with the operator (`operator:cli`) as actor.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use tyboo_tenancy::Tenancy;
use tyboo_tenancy::domain::admin::{MemberRef, OPERATOR_TOKEN_TTL_MAX_SECONDS, Operator};
use tyboo_tenancy::domain::validation::{Email, Name};
use uuid::Uuid;

use crate::config::TybooConfig;

/// The actor name of every action taken from this command line.
const CLI_OPERATOR: &str = "cli";

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Organizations.
    Orgs {
        #[command(subcommand)]
        command: OrgsCommand,
    },
    /// Workspaces.
    Workspaces {
        #[command(subcommand)]
        command: WorkspacesCommand,
    },
    /// Members of a workspace.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// A short-lived operator token for grpcurl: it reads any workspace and
    /// changes nothing.
    OperatorToken {
        /// How long it lives: `90s`, `15m`, `1h` (at most one hour).
        #[arg(long, default_value = "15m", value_parser = parse_ttl)]
        ttl: Duration,
        /// The workspace the vault and the executor read in (they act in the
        /// token's own workspace); tenancy reads any workspace regardless.
        #[arg(long)]
        workspace: Option<Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Every organization.
    List,
    /// A new organization with its first workspace and owner; prints the
    /// owner's API key once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        /// The first workspace's name.
        #[arg(long, default_value = "Default workspace")]
        workspace: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// Every workspace, or those of one organization.
    List {
        #[arg(long = "org")]
        organization: Option<Uuid>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// The members of a workspace and their roles.
    List {
        #[arg(long)]
        workspace: Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Recovery: a new API key for an existing member, printed once.
    Issue {
        #[arg(long)]
        workspace: Uuid,
        /// The member's user id or e-mail address.
        #[arg(long)]
        user: String,
    },
}

/// `90s`, `15m`, `1h` or plain seconds, at most an hour.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|character: char| !character.is_ascii_digit()) {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let count: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 90s, 15m or 1h"))?;
    let seconds = match unit {
        "s" => count,
        "m" => count.saturating_mul(60),
        "h" => count.saturating_mul(3600),
        _ => return Err(format!("`{text}` is not a duration such as 90s, 15m or 1h")),
    };
    if seconds == 0 || seconds > OPERATOR_TOKEN_TTL_MAX_SECONDS {
        return Err(format!(
            "must be between 1s and {}m",
            OPERATOR_TOKEN_TTL_MAX_SECONDS / 60
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// Runs one admin command and prints its result.
pub async fn run(config: &TybooConfig, args: AdminArgs) -> anyhow::Result<()> {
    let tenancy = crate::mesh::open_tenancy_for_admin(config).await?;
    let outcome = run_on(&tenancy, args).await;
    tenancy.close().await.ok();
    let printed = outcome?;
    println!("{printed}");
    Ok(())
}

async fn run_on(tenancy: &Tenancy, args: AdminArgs) -> anyhow::Result<String> {
    let domain = tenancy.domain();
    let operator = Operator::new(CLI_OPERATOR)?;
    let as_json = args.json;
    let max_length = tenancy.config().max_name_length;
    let text = match args.command {
        AdminCommand::Orgs {
            command: OrgsCommand::List,
        } => {
            let organizations = domain.admin_list_organizations(&operator).await?;
            if as_json {
                json!({"organizations": organizations.iter().map(|organization| json!({
                    "id": organization.id,
                    "name": organization.name,
                    "createTime": organization.create_time,
                })).collect::<Vec<_>>()})
                .to_string()
            } else {
                table(
                    &["ID", "NAME", "CREATED"],
                    organizations
                        .iter()
                        .map(|organization| {
                            vec![
                                organization.id.to_string(),
                                organization.name.clone(),
                                organization.create_time.to_rfc3339(),
                            ]
                        })
                        .collect(),
                )
            }
        }
        AdminCommand::Orgs {
            command:
                OrgsCommand::Create {
                    name,
                    owner_email,
                    workspace,
                },
        } => {
            let organization_name = Name::parse("name", &name, max_length)?;
            let workspace_name = Name::parse("workspace", &workspace, max_length)?;
            let owner_email = Email::parse("owner_email", &owner_email)?;
            let created = domain
                .admin_create_organization(
                    &operator,
                    &organization_name,
                    &workspace_name,
                    &owner_email,
                )
                .await?;
            if as_json {
                json!({
                    "organizationId": created.organization_id,
                    "workspaceId": created.workspace_id,
                    "ownerId": created.user_id,
                    "ownerEmail": created.owner_email,
                    "apiKey": created.api_key,
                })
                .to_string()
            } else {
                format!(
                    "Created an organization, a workspace and its owner.\n  organization  {}\n  \
                     workspace     {}\n  owner         {} ({})\n  API key       {}\nThe API key \
                     is shown only this once; keep it.",
                    created.organization_id,
                    created.workspace_id,
                    created.owner_email,
                    created.user_id,
                    created.api_key
                )
            }
        }
        AdminCommand::Workspaces {
            command: WorkspacesCommand::List { organization },
        } => {
            let workspaces = domain
                .admin_list_workspaces(&operator, organization)
                .await?;
            if as_json {
                json!({"workspaces": workspaces.iter().map(|workspace| json!({
                    "id": workspace.id,
                    "organizationId": workspace.organization_id,
                    "name": workspace.name,
                    "createTime": workspace.create_time,
                })).collect::<Vec<_>>()})
                .to_string()
            } else {
                table(
                    &["ID", "ORGANIZATION", "NAME", "CREATED"],
                    workspaces
                        .iter()
                        .map(|workspace| {
                            vec![
                                workspace.id.to_string(),
                                workspace.organization_id.to_string(),
                                workspace.name.clone(),
                                workspace.create_time.to_rfc3339(),
                            ]
                        })
                        .collect(),
                )
            }
        }
        AdminCommand::Members {
            command: MembersCommand::List { workspace },
        } => {
            let members = domain.admin_list_members(&operator, workspace).await?;
            if as_json {
                json!({"members": members.iter().map(|member| json!({
                    "userId": member.user_id,
                    "email": member.email,
                    "displayName": member.display_name,
                    "role": member.role.as_str(),
                    "joinTime": member.join_time,
                })).collect::<Vec<_>>()})
                .to_string()
            } else {
                table(
                    &["USER", "EMAIL", "ROLE", "JOINED"],
                    members
                        .iter()
                        .map(|member| {
                            vec![
                                member.user_id.to_string(),
                                member.email.clone(),
                                member.role.as_str().to_owned(),
                                member.join_time.to_rfc3339(),
                            ]
                        })
                        .collect(),
                )
            }
        }
        AdminCommand::Keys {
            command: KeysCommand::Issue { workspace, user },
        } => {
            let member = MemberRef::parse(&user)?;
            let (member, issued) = domain
                .admin_issue_api_key(&operator, workspace, &member)
                .await?;
            if as_json {
                json!({
                    "apiKeyId": issued.api_key.id,
                    "workspaceId": workspace,
                    "userId": member.user_id,
                    "email": member.email,
                    "role": member.role.as_str(),
                    "secret": issued.secret,
                })
                .to_string()
            } else {
                format!(
                    "Issued a new API key for {} ({}, {}) in workspace {}.\n  API key       {}\n\
                     The API key is shown only this once; keep it.",
                    member.email, member.user_id, member.role, workspace, issued.secret
                )
            }
        }
        AdminCommand::OperatorToken { ttl, workspace } => {
            let issued = domain
                .admin_issue_operator_token(&operator, ttl.as_secs(), workspace)
                .await?;
            if as_json {
                json!({
                    "token": issued.token,
                    "subject": issued.principal.actor(),
                    "expireTime": issued.expire_time,
                })
                .to_string()
            } else {
                // The token alone, so that `$(tyboo admin operator-token)` works.
                issued.token
            }
        }
    };
    Ok(text)
}

/// Left-aligned columns, two spaces apart.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut lines = vec![render(
        headers.iter().map(|header| header.to_string()).collect(),
    )];
    lines.extend(rows.into_iter().map(render));
    lines.join("\n")
}

/// Context for a failed command, naming what was asked.
pub fn describe(args: &AdminArgs) -> &'static str {
    match args.command {
        AdminCommand::Orgs {
            command: OrgsCommand::List,
        } => "listing organizations",
        AdminCommand::Orgs {
            command: OrgsCommand::Create { .. },
        } => "creating an organization",
        AdminCommand::Workspaces { .. } => "listing workspaces",
        AdminCommand::Members { .. } => "listing members",
        AdminCommand::Keys { .. } => "issuing an API key",
        AdminCommand::OperatorToken { .. } => "issuing an operator token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_as_operators_write_them_and_stay_capped() {
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30"), Ok(Duration::from_secs(30)));
        assert!(parse_ttl("61m").is_err());
        assert!(parse_ttl("2h").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("5d").is_err());
    }

    #[test]
    fn tables_align_their_columns() {
        let text = table(
            &["ID", "NAME"],
            vec![vec!["1".to_owned(), "Acme".to_owned()]],
        );
        assert_eq!(text, "ID  NAME\n1   Acme");
    }
}
