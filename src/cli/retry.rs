//! `buildplane retry BUILD...`: build again although the spec did not change. The submit-once
//! rule (`deploy::apply`) never re-creates a Workflow for a spec hash it has seen; retry deletes
//! the finished Workflow and forgets its record, then applies, so exactly one new one runs.
//!
//! Retry works within the inventory that holds the builds: its default is `apply`'s
//! (`builds`), and a build object the named inventory does not record is refused before any
//! write (exit 2, naming the inventories that do hold it), so a retry never starts a second
//! inventory of the same objects. `sync` keeps its own default (`sync`); retrying its builds
//! takes `--inventory sync`.

use super::Outcome;
use super::connect::{BuildArgs, ClientArgs};
use crate::core::manifest::{self, ObjectId};
use crate::core::plan::Inventory;
use crate::kube::Kube;
use crate::pipeline::deploy::{self, Action, DeployOptions, Retry};
use crate::pipeline::{self, Rendered};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;

/// Why retry changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The named inventory does not record a build object: retrying into it would record the
    /// build's objects a second time, under another label.
    #[error("{object} is not in inventory {inventory}: {hint}; nothing was changed")]
    NotInInventory {
        object: String,
        inventory: String,
        hint: String,
    },
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub targets: BuildArgs,
    /// Inventory the builds were applied with (`apply`'s default; `sync` uses `sync`). It must
    /// already record every build object retried.
    #[arg(long, value_name = "NAME", default_value = crate::core::plan::BUILDS_INVENTORY)]
    pub inventory: String,
    /// Namespace of the inventory ConfigMap.
    #[arg(
        long = "inventory-namespace",
        value_name = "NS",
        default_value = "default"
    )]
    pub inventory_namespace: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(args: RetryArgs) -> anyhow::Result<Outcome> {
    let builds = args.targets.load()?;
    let mut objects = pipeline::render_builds(&builds, &pipeline::BuildRender::default())?;
    manifest::sort(&mut objects);
    let rendered = Rendered {
        builds: objects,
        ..Rendered::default()
    };
    let opts = DeployOptions {
        inventory: args.inventory.clone(),
        inventory_namespace: args.inventory_namespace.clone(),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        let mut prepared = deploy::prepare(&kube, &rendered, &opts).await?;
        for p in &prepared.objects {
            if crate::engine::is_build_object(&p.manifest.id) {
                held_by(&p.manifest.id, &opts.inventory, &prepared.inventories)?;
            }
        }
        let decided = deploy::forget_builds(&kube, &mut prepared).await?;
        let done = deploy::apply(&kube, &prepared, &opts, |_, _| {}).await?;
        let mut out = std::io::stdout().lock();
        for (id, retry) in decided {
            let action = done.iter().find(|(d, _)| *d == id).map(|(_, a)| a);
            let word = match (retry, action) {
                (Retry::Running, _) => "running (not retried)".to_owned(),
                (Retry::Resubmit, Some(Action::Created | Action::Configured)) => {
                    "resubmitted".to_owned()
                }
                (Retry::Resubmit, a) => format!("{}", a.cloned().unwrap_or(Action::Unchanged)),
            };
            writeln!(out, "{id} {word}")?;
        }
        Ok(Outcome::Success)
    })
}

/// Refuses a build object that inventory `name` does not record, saying which inventories do.
fn held_by(
    id: &ObjectId,
    name: &str,
    inventories: &BTreeMap<String, Inventory>,
) -> Result<(), RetryError> {
    if inventories
        .get(name)
        .is_some_and(|inv| inv.get(id).is_some())
    {
        return Ok(());
    }
    let holders: Vec<&str> = inventories
        .iter()
        .filter(|(_, inv)| inv.get(id).is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    let hint = match holders.as_slice() {
        [] => "no inventory records it (apply it first)".to_owned(),
        [one] => format!("inventory {one} records it (pass --inventory {one})"),
        many => format!(
            "inventories {} record it (pass one with --inventory)",
            many.join(", ")
        ),
    };
    Err(RetryError::NotInInventory {
        object: id.to_string(),
        inventory: name.to_owned(),
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::Entry;

    fn id() -> ObjectId {
        ObjectId {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Workflow".into(),
            namespace: Some("openchoreo-ci-default".into()),
            name: "greeter-0a1b2c3d".into(),
        }
    }

    fn holding(names: &[&str]) -> BTreeMap<String, Inventory> {
        let i = id();
        let entry = Entry {
            api_version: i.api_version.clone(),
            kind: i.kind.clone(),
            namespace: i.namespace.clone(),
            name: i.name.clone(),
            hash: "h".into(),
            spec_hash: None,
        };
        let mut out = BTreeMap::from([("empty".to_owned(), Inventory::default())]);
        for n in names {
            let mut inv = Inventory::default();
            inv.entries.insert(i.to_string(), entry.clone());
            out.insert(n.to_string(), inv);
        }
        out
    }

    #[test]
    fn retry_stays_in_the_inventory_that_holds_the_build() {
        assert!(held_by(&id(), "builds", &holding(&["builds", "sync"])).is_ok());
        let err = |names: &[&str]| {
            held_by(&id(), "builds", &holding(names))
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["sync"]).contains("inventory sync records it (pass --inventory sync)"));
        assert!(err(&[]).contains("no inventory records it"));
        assert!(err(&["a", "b"]).contains("inventories a, b record it"));
        assert!(err(&[]).starts_with("Workflow/openchoreo-ci-default/greeter-0a1b2c3d"));
    }
}
