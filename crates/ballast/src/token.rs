//! `ballast token create|list|delete`: API tokens, straight in the store (so the first admin
//! token can be made before anyone can call the API).

use std::path::PathBuf;

use anyhow::Context;
use ballast_store::Store;

use crate::config::Config;

/// Arguments of `ballast token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// The config file naming the database (`BALLAST_DATABASE_URL` overrides it).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
}

/// Token commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a token and print it once; only its hash is stored.
    Create {
        /// A unique name; history records it as the actor.
        #[arg(long)]
        name: String,
        /// `viewer` (read), `operator` (evaluate, act) or `admin` (policies, tokens).
        #[arg(long)]
        scope: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Delete a token by name.
    Delete {
        /// The token's name.
        name: String,
    },
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the store at {}",
                crate::serve::redact(&config.database_url)
            )
        })?;
    match &args.command {
        Command::Create { name, scope } => {
            let scope =
                ballast_api::tokens::check_new_token(name, scope).map_err(anyhow::Error::msg)?;
            let (token, hash) = ballast_api::auth::new_token();
            store
                .create_token(name, scope, &hash, "cli")
                .await
                .with_context(|| format!("cannot create the token `{name}`"))?;
            eprintln!(
                "token `{name}` ({}) created; it is shown only now:",
                scope.as_str()
            );
            println!("{token}");
        }
        Command::List => {
            for t in store.list_tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    t.name,
                    t.scope.as_str(),
                    t.created_at.to_rfc3339(),
                    t.created_by
                );
            }
        }
        Command::Delete { name } => {
            let token = store
                .list_tokens()
                .await?
                .into_iter()
                .find(|t| &t.name == name)
                .with_context(|| format!("no token named `{name}`"))?;
            store.delete_token(token.id, "cli").await?;
            eprintln!("token `{name}` deleted");
        }
    }
    store.close().await;
    Ok(())
}
