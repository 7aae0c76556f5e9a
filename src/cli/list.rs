//! `buildplane list`: the builds on the build plane, one row each, found by their labels (no
//! Build files). Like `kubectl get` and `argo list`, one organization by default (`-n`, default
//! `default`, buildplane's default organization everywhere) and every one with `-A`.

use super::Outcome;
use super::connect::ClientArgs;
use super::table::{self, or_none};
use crate::core::progress::BuildRecord;
use crate::core::text::{escape_controls, escape_json_text, safe_yaml};
use crate::kube::Kube;
use crate::lifecycle::find;
use clap::{Args, ValueEnum};
use serde_json::json;
use std::io::Write;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListOutput {
    /// More columns: the build object, template, revision, start and finish.
    Wide,
    /// `{"items": [...]}`, one record per build.
    Json,
    /// The same as YAML.
    Yaml,
    /// `ORG/BUILD` per line, for other commands.
    Name,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this organization's builds.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "ORG",
        default_value = "default",
        conflicts_with = "all_organizations"
    )]
    pub namespace: String,
    /// Every organization's builds.
    #[arg(short = 'A', long = "all-organizations")]
    pub all_organizations: bool,
    /// wide, json, yaml or name (default: a table).
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<ListOutput>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The PHASE column, as `argo list` words it: Argo's phase (`Pending` before it has one), and
/// a stop asked for while it still runs or after it ended.
pub fn phase_cell(r: &BuildRecord) -> String {
    let phase = if r.engine_phase.is_empty() {
        "Pending"
    } else {
        r.engine_phase.as_str()
    };
    match (r.stop_requested, r.phase.is_completed()) {
        (None, _) => phase.to_owned(),
        (Some(m), false) => format!("{phase} ({m} requested)"),
        (Some(m), true) => format!("{phase} ({m})"),
    }
}

/// The STEPS column: steps succeeded / steps (`?` when the status is unreadable).
pub fn steps_cell(r: &BuildRecord) -> String {
    match r.steps_done() {
        Some((done, total)) => format!("{done}/{total}"),
        None => "?".to_owned(),
    }
}

/// What the build was built from: the commit it checked out, else the commit it was pinned
/// to, else its branch.
pub fn revision_cell(r: &BuildRecord) -> String {
    let text = r
        .revision
        .clone()
        .or_else(|| Some(r.commit.clone()).filter(|c| !c.is_empty()))
        .unwrap_or_else(|| r.branch.clone());
    or_none(Some(&text))
}

/// The table of `records` (wide: with the build object and times), ages against `now`.
pub fn render_table(records: &[BuildRecord], wide: bool, now: SystemTime) -> String {
    let mut headers = vec!["ORG", "BUILD", "PHASE", "STEPS", "AGE", "IMAGE"];
    if wide {
        headers.extend(["WORKFLOW", "TEMPLATE", "REVISION", "STARTED", "FINISHED"]);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut row = vec![
                r.organization.clone(),
                r.build.clone(),
                phase_cell(r),
                steps_cell(r),
                table::age(r.created.as_deref(), now),
                or_none(r.image.as_deref()),
            ];
            if wide {
                row.extend([
                    format!("{}/{}", r.namespace, r.name),
                    or_none(Some(&r.template)),
                    revision_cell(r),
                    or_none(r.started.as_deref()),
                    or_none(r.finished.as_deref()),
                ]);
            }
            row
        })
        .collect();
    table::render(&headers, &rows)
}

/// The whole output for `format` (`None`: the table).
pub fn render(records: &[BuildRecord], format: Option<ListOutput>, now: SystemTime) -> String {
    match format {
        None => render_table(records, false, now),
        Some(ListOutput::Wide) => render_table(records, true, now),
        Some(ListOutput::Name) => records
            .iter()
            .map(|r| format!("{}\n", escape_controls(&r.label())))
            .collect(),
        Some(ListOutput::Json) => {
            let text = serde_json::to_string_pretty(&json!({"items": records}))
                .expect("records serialize");
            format!("{}\n", escape_json_text(&text))
        }
        Some(ListOutput::Yaml) => safe_yaml(&json!({"items": records})),
    }
}

pub fn run(args: ListArgs) -> anyhow::Result<Outcome> {
    let org = if args.all_organizations {
        None
    } else {
        crate::core::spec::check_organization(&args.namespace)
            .map_err(|m| anyhow::anyhow!("-n: {m}"))?;
        Some(args.namespace.as_str())
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let found = runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        let found = find::list(&kube, org).await?;
        // What it cost (`BUILDPLANE_LOG=buildplane=debug`): discovery and one LIST, however
        // many builds.
        tracing::debug!(
            builds = found.len(),
            requests = kube.requests(),
            "listed builds"
        );
        anyhow::Ok(found)
    })?;
    let records: Vec<BuildRecord> = found.into_iter().map(|f| f.record).collect();
    let tabular = matches!(args.output, None | Some(ListOutput::Wide));
    if records.is_empty() && tabular {
        // As kubectl: the note on stderr, nothing on stdout.
        match org {
            Some(o) => eprintln!("No builds found in organization {o}."),
            None => eprintln!("No builds found."),
        }
        return Ok(Outcome::Success);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(render(&records, args.output, SystemTime::now()).as_bytes())?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::builds::StopMode;
    use crate::core::progress::{Phase, StepRecord};

    fn record(build: &str, phase: Phase, engine_phase: &str, done: usize) -> BuildRecord {
        let steps = [
            "clone-step",
            "build-step",
            "push-step",
            "workload-create-step",
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| StepRecord {
            step: (*s).to_owned(),
            phase: if i < done {
                Phase::Succeeded
            } else {
                Phase::Pending
            },
            engine_phase: String::new(),
            started: None,
            finished: None,
            attempts: usize::from(i < done),
            message: String::new(),
        })
        .collect();
        BuildRecord {
            organization: "acme".into(),
            build: build.into(),
            kind: "Workflow".into(),
            namespace: "openchoreo-ci-acme".into(),
            name: format!("{build}-1a2b3c4d"),
            phase,
            engine_phase: engine_phase.into(),
            message: String::new(),
            template: "docker".into(),
            project: "shop".into(),
            component: build.into(),
            repository: "https://example.com/r.git".into(),
            commit: String::new(),
            branch: "main".into(),
            revision: (done > 0).then(|| "4f2a9c1e".to_owned()),
            image: (done > 2).then(|| format!("reg/{build}:1")),
            created: Some("2026-01-01T00:00:00Z".into()),
            started: Some("2026-01-01T00:00:01Z".into()),
            finished: (done == 4).then(|| "2026-01-01T00:04:00Z".to_owned()),
            stop_requested: None,
            steps,
            steps_error: None,
            engine_conditions: Vec::new(),
            provenance: Default::default(),
        }
    }

    fn now() -> SystemTime {
        table::parse_time("2026-01-01T00:05:00Z").unwrap()
    }

    #[test]
    fn the_table_has_one_row_per_build() {
        let records = [
            record("cart", Phase::Succeeded, "Succeeded", 4),
            record("pay", Phase::Running, "Running", 1),
        ];
        assert_eq!(
            render(&records, None, now()),
            "ORG    BUILD   PHASE       STEPS   AGE   IMAGE\n\
             acme   cart    Succeeded   4/4     5m    reg/cart:1\n\
             acme   pay     Running     1/4     5m    <none>\n"
        );
        let wide = render(&records, Some(ListOutput::Wide), now());
        let lines: Vec<&str> = wide.lines().collect();
        assert!(
            lines[0].ends_with(
                "IMAGE        WORKFLOW                           TEMPLATE   REVISION   STARTED                FINISHED"
            ),
            "{wide}"
        );
        assert!(
            lines[2].ends_with(
                "openchoreo-ci-acme/pay-1a2b3c4d    docker     4f2a9c1e   2026-01-01T00:00:01Z   <none>"
            ),
            "{wide}"
        );
        assert_eq!(
            render(&records, Some(ListOutput::Name), now()),
            "acme/cart\nacme/pay\n"
        );
    }

    #[test]
    fn phases_read_as_argo_list_words_them() {
        let mut r = record("b", Phase::Unknown, "", 0);
        assert_eq!(phase_cell(&r), "Pending");
        r.engine_phase = "Running".into();
        r.phase = Phase::Running;
        r.stop_requested = Some(StopMode::Stop);
        assert_eq!(phase_cell(&r), "Running (Stop requested)");
        r.engine_phase = "Failed".into();
        r.phase = Phase::Failed;
        r.stop_requested = Some(StopMode::Terminate);
        assert_eq!(phase_cell(&r), "Failed (Terminate)");
        r.steps_error = Some("offloaded".into());
        assert_eq!(steps_cell(&r), "?");
        assert_eq!(
            revision_cell(&record("b", Phase::Running, "Running", 0)),
            "main"
        );
    }

    #[test]
    fn json_and_yaml_carry_the_records_with_nothing_a_terminal_acts_on() {
        let mut r = record("b", Phase::Failed, "Failed", 1);
        r.message = "boom\u{1b}[2J\u{9b}1m\u{202e}".into();
        let json_text = render(std::slice::from_ref(&r), Some(ListOutput::Json), now());
        let yaml_text = render(std::slice::from_ref(&r), Some(ListOutput::Yaml), now());
        for text in [&json_text, &yaml_text] {
            assert!(
                !text
                    .chars()
                    .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
                "{text}"
            );
        }
        let v: serde_json::Value = serde_json::from_str(&json_text).unwrap();
        assert_eq!(v["items"][0]["message"], r.message.as_str());
        assert_eq!(v["items"][0]["organization"], "acme");
        assert_eq!(v["items"][0]["phase"], "Failed");
        let y: serde_json::Value = serde_saphyr::from_str(&yaml_text).unwrap();
        assert_eq!(y, v);
    }
}
