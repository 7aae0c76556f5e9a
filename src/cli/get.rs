//! `buildplane get ORG/BUILD...`: one build on the build plane in full, as `argo get` shows a
//! workflow: its steps with their times and phases, its outputs (image, the Workload harvest
//! makes of it), the Build's conditions as `watch` would report them with no emit target, and
//! the engine's own conditions. Found by labels; no Build file.

use super::Outcome;
use super::board::step_cells;
use super::connect::ClientArgs;
use super::table::{self, or_none};
use crate::core::builds::BuildRef;
use crate::core::progress::{BuildRecord, Phase};
use crate::core::provenance;
use crate::core::text::{escape_controls, escape_json_text, safe_yaml};
use crate::kube::Kube;
use crate::lifecycle::find::{self, Found};
use crate::lifecycle::{BuildOutcome, harvest::harvest};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::io::Write;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetOutput {
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Builds on the build plane, as ORG/BUILD.
    #[arg(value_name = "ORG/BUILD", required = true)]
    pub builds: Vec<String>,
    /// json or yaml (default: text).
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<GetOutput>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// One build as `get` shows it: the record, and what harvest made of it (`Err`: why the
/// object does not say enough to harvest).
pub struct Shown {
    pub record: BuildRecord,
    pub outcome: Result<BuildOutcome, String>,
}

impl Shown {
    fn of(found: &Found, name: &BuildRef) -> Shown {
        let outcome = found
            .target(name)
            .map(|t| harvest(&t, &found.object))
            .map_err(|e| escape_controls(&e.to_string()).into_owned());
        Shown {
            record: found.record.clone(),
            outcome,
        }
    }

    /// The JSON form: the record with the conditions, the Workload (or why there is none) and,
    /// once the build finished, the verdict `watch` would give it with no emit target.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.record).expect("records serialize");
        match &self.outcome {
            Ok(o) => {
                v["conditions"] = json!(o.conditions(None));
                v["workload"] = o.workload().cloned().unwrap_or(Value::Null);
                if let Some(e) = o.workload_error() {
                    v["workloadError"] = json!(e);
                }
                if self.record.phase.is_completed() {
                    v["result"] = json!(o.verdict().as_str());
                }
            }
            Err(e) => v["harvestError"] = json!(e),
        }
        v
    }
}

/// A Workload in one line: `Workload acme/cart of shop/cart: containers main (reg/cart:1);
/// endpoints rest-api`.
pub fn workload_line(w: &Value) -> String {
    let s = |p: &str| w.pointer(p).and_then(Value::as_str).unwrap_or("");
    let keys = |p: &str| -> Vec<String> {
        w.pointer(p)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let containers: Vec<String> = keys("/spec/containers")
        .into_iter()
        .map(|c| {
            let image = w
                .pointer(&format!("/spec/containers/{c}/image"))
                .and_then(Value::as_str)
                .unwrap_or("");
            format!("{c} ({image})")
        })
        .collect();
    let mut line = format!(
        "Workload {}/{} of {}/{}",
        s("/metadata/namespace"),
        s("/metadata/name"),
        s("/spec/owner/projectName"),
        s("/spec/owner/componentName")
    );
    if !containers.is_empty() {
        line.push_str(&format!(": containers {}", containers.join(", ")));
    }
    let endpoints = keys("/spec/endpoints");
    if !endpoints.is_empty() {
        line.push_str(&format!("; endpoints {}", endpoints.join(", ")));
    }
    line
}

fn field(label: &str, value: &str) -> String {
    format!("{:<13}{}\n", format!("{label}:"), escape_controls(value))
}

/// The text of one build, against `now` for ages and durations.
pub fn render_text(shown: &Shown, now: SystemTime) -> String {
    let r = &shown.record;
    let mut out = String::new();
    out.push_str(&field("Build", &r.label()));
    out.push_str(&field(&r.kind, &format!("{}/{}", r.namespace, r.name)));
    out.push_str(&field("Template", &or_none(Some(&r.template))));
    out.push_str(&field("Owner", &format!("{}/{}", r.project, r.component)));
    out.push_str(&field("Repository", &or_none(Some(&r.repository))));
    let asked = match (r.commit.as_str(), r.branch.as_str()) {
        ("", "") => table::NONE.to_owned(),
        ("", branch) => format!("branch {branch}"),
        (commit, _) => format!("commit {commit}"),
    };
    out.push_str(&field("Revision", &asked));
    out.push_str(&field("Phase", &super::list::phase_cell(r)));
    if !r.message.is_empty() {
        out.push_str(&field("Message", &r.message));
    }
    if let Some(created) = &r.created {
        let ago = table::age(Some(created), now);
        out.push_str(&field("Created", &format!("{created} ({ago} ago)")));
    }
    out.push_str(&field("Started", &or_none(r.started.as_deref())));
    out.push_str(&field("Finished", &or_none(r.finished.as_deref())));
    if let Some(d) = table::duration(r.started.as_deref(), r.finished.as_deref(), now) {
        out.push_str(&field("Duration", &d));
    }
    match &r.steps_error {
        Some(e) => out.push_str(&field("Steps", &format!("unreadable: {e}"))),
        None => {
            let cells = step_cells(r.steps.iter().map(|s| (s.step.as_str(), s.phase)));
            out.push_str(&field("Progress", &cells));
            out.push('\n');
            let rows: Vec<Vec<String>> = r
                .steps
                .iter()
                .map(|s| {
                    let phase = if s.engine_phase.is_empty() {
                        Phase::Pending.as_str().to_owned()
                    } else {
                        s.engine_phase.clone()
                    };
                    vec![
                        s.step.clone(),
                        phase,
                        or_none(s.started.as_deref()),
                        or_none(s.finished.as_deref()),
                        s.attempts.to_string(),
                        s.message.clone(),
                    ]
                })
                .collect();
            let headers = [
                "STEP", "PHASE", "STARTED", "FINISHED", "ATTEMPTS", "MESSAGE",
            ];
            out.push_str(&table::render(&headers, &rows));
        }
    }
    out.push_str("\nOutputs:\n");
    let workload = match &shown.outcome {
        Ok(o) => match (o.workload(), o.workload_error()) {
            (Some(w), _) => workload_line(w),
            (None, Some(e)) => format!("none: {e}"),
            (None, None) if r.phase.is_completed() => "none: the build did not succeed".into(),
            (None, None) => "not yet: the build has not finished".into(),
        },
        Err(e) => format!("not checked: {e}"),
    };
    let outputs = vec![
        vec!["  image".to_owned(), or_none(r.image.as_deref())],
        vec!["  revision".to_owned(), or_none(r.revision.as_deref())],
        vec!["  workload".to_owned(), workload],
    ];
    out.push_str(&table::render(&[], &outputs));
    let provenance = provenance_rows(shown);
    if !provenance.is_empty() {
        out.push_str("Provenance:\n");
        out.push_str(&table::render(&[], &provenance));
    }
    if let Ok(o) = &shown.outcome {
        out.push_str("Conditions:\n");
        let rows: Vec<Vec<String>> = o
            .conditions(None)
            .into_iter()
            .map(|c| vec![format!("  {}", c.type_), c.status, c.reason, c.message])
            .collect();
        out.push_str(&table::render(&[], &rows));
    }
    if !r.engine_conditions.is_empty() {
        out.push_str(&format!("{} conditions:\n", escape_controls(&r.kind)));
        let rows: Vec<Vec<String>> = r
            .engine_conditions
            .iter()
            .map(|c| {
                vec![
                    format!("  {}", c.type_),
                    c.status.clone(),
                    c.message.clone(),
                ]
            })
            .collect();
        out.push_str(&table::render(&[], &rows));
    }
    out
}

/// Where the build came from (`core::provenance`): the Workload's annotations once it was
/// harvested (they include the commit built), else what the build object records.
fn provenance_rows(shown: &Shown) -> Vec<Vec<String>> {
    let from_workload = match &shown.outcome {
        Ok(o) => o.workload().map(provenance::read).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let entries: Vec<(&str, String)> = if from_workload.is_empty() {
        let r = &shown.record;
        provenance::KEYS
            .iter()
            .filter_map(|k| r.provenance.get(*k).map(|v| (*k, v.clone())))
            .collect()
    } else {
        from_workload
    };
    entries
        .into_iter()
        .map(|(k, v)| {
            let short = k.trim_start_matches("buildplane.openchoreo.dev/");
            vec![format!("  {short}"), escape_controls(&v).into_owned()]
        })
        .collect()
}

/// The whole output: text blocks apart by a blank line; one build as one JSON/YAML object,
/// several as `{"items": [...]}` (as `kubectl get` does).
pub fn render(shown: &[Shown], format: Option<GetOutput>, now: SystemTime) -> String {
    let value = || match shown {
        [one] => one.to_json(),
        many => json!({"items": many.iter().map(Shown::to_json).collect::<Vec<_>>()}),
    };
    match format {
        None => shown
            .iter()
            .map(|s| render_text(s, now))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(GetOutput::Json) => {
            let text = serde_json::to_string_pretty(&value()).expect("JSON values serialize");
            format!("{}\n", escape_json_text(&text))
        }
        Some(GetOutput::Yaml) => safe_yaml(&value()),
    }
}

/// `ORG/BUILD` arguments, each checked (a bad one is bad input: exit 2), each once.
pub fn parse_names(args: &[String]) -> anyhow::Result<Vec<BuildRef>> {
    let mut names: Vec<BuildRef> = Vec::new();
    for a in args {
        let n = BuildRef::parse(a)?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Ok(names)
}

pub fn run(args: GetArgs) -> anyhow::Result<Outcome> {
    let names = parse_names(&args.builds)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let found = runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        find::resolve(&kube, &names).await
    })?;
    let shown: Vec<Shown> = found
        .iter()
        .zip(&names)
        .map(|(f, n)| Shown::of(f, n))
        .collect();
    let mut out = std::io::stdout().lock();
    out.write_all(render(&shown, args.output, SystemTime::now()).as_bytes())?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::{build_from_value, parse_documents};
    use crate::engine::DEFAULT;
    use crate::lifecycle::Target;
    use crate::pipeline::LoadedBuild;

    /// The reading-list Build's Workflow with the recorded status of `fixture`.
    fn shown(fixture: &str, hostile: Option<&str>) -> Shown {
        let text = include_str!("../../fixtures/builds/reading-list-commit.yaml");
        let (origin, doc) = parse_documents("b.yaml", text).unwrap().remove(0);
        let build = build_from_value(&origin, doc).unwrap();
        let mut wf = DEFAULT.build_object(&build).object;
        let recorded: Value = serde_saphyr::from_str(fixture).unwrap();
        wf["status"] = recorded["status"].clone();
        if let Some(m) = hostile {
            wf["status"]["message"] = json!(m);
        }
        let t = Target::of(&LoadedBuild { origin, build }).unwrap();
        Shown {
            record: DEFAULT.record(&wf),
            outcome: Ok(harvest(&t, &wf)),
        }
    }

    fn now() -> SystemTime {
        table::parse_time("2025-07-01T10:10:00Z").unwrap()
    }

    #[test]
    fn a_succeeded_build_in_text() {
        let s = shown(
            include_str!("../../fixtures/argo-status/succeeded.yaml"),
            None,
        );
        let out = render_text(&s, now());
        for want in [
            "Build:       default/reading-list-service-build-7c9e4a1b\n",
            "Workflow:    openchoreo-ci-default/reading-list-service-build-7c9e4a1b-8081ce9a\n",
            "Revision:    commit 4f2a9c1e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39\n",
            "Duration:    5m6s\n",
            "Progress:    ✓ clone  ✓ build  ✓ push  ✓ workload-create\n",
            "clone-step             Succeeded   2025-07-01T10:00:00Z   2025-07-01T10:00:09Z   1\n",
            "  revision   4f2a9c1e\n",
            "  workload   Workload default/reading-list-service of default/reading-list-service: \
             containers main (localhost:30003/default-reading-list-service:default-4f2a9c1e); \
             endpoints rest-api\n",
            "  BuildCompleted   True   BuildCompleted   Build completed successfully\n",
            "Workflow conditions:\n  PodRunning   False\n  Completed    True\n",
            // Where the Workload came from: the Build, its Workflow, the commit built, the spec.
            "Provenance:\n  build          default/reading-list-service-build-7c9e4a1b\n",
            "  build-object   openchoreo-ci-default/reading-list-service-build-7c9e4a1b-8081ce9a\n",
            "  revision       4f2a9c1e\n",
        ] {
            assert!(out.contains(want), "{want:?} missing from:\n{out}");
        }
        let spec_hash = s.record.provenance[crate::core::provenance::SPEC_HASH].clone();
        assert!(
            out.contains(&format!("  spec-hash      {spec_hash}\n")),
            "{out}"
        );
        let v = s.to_json();
        assert_eq!(v["result"], "succeeded");
        assert_eq!(
            v["workload"]["metadata"]["annotations"]["buildplane.openchoreo.dev/revision"],
            "4f2a9c1e"
        );
        assert_eq!(v["workload"]["metadata"]["name"], "reading-list-service");
        assert_eq!(v["conditions"][2]["type"], "BuildCompleted");
    }

    #[test]
    fn a_failed_build_with_hostile_text_is_escaped_everywhere() {
        let hostile = "x\u{1b}]0;t\u{7}\u{202e}";
        let s = shown(
            include_str!("../../fixtures/argo-status/build-step-failed.yaml"),
            Some(hostile),
        );
        let out = render(std::slice::from_ref(&s), None, now());
        assert!(
            out.contains("Message:     x\\e]0;t\\x07\\u{202e}\n"),
            "{out}"
        );
        assert!(
            out.contains("  workload   none: the build did not succeed\n"),
            "{out}"
        );
        assert!(
            out.contains("  BuildCompleted   False   BuildFailed      Build workflow failed\n"),
            "{out}"
        );
        for text in [
            out,
            render(std::slice::from_ref(&s), Some(GetOutput::Json), now()),
            render(std::slice::from_ref(&s), Some(GetOutput::Yaml), now()),
        ] {
            assert!(
                !text
                    .chars()
                    .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
                "{text}"
            );
        }
        let v: Value = serde_json::from_str(&render(
            std::slice::from_ref(&s),
            Some(GetOutput::Json),
            now(),
        ))
        .unwrap();
        assert_eq!(v["message"], hostile);
        assert_eq!(v["result"], "build-failed");
        assert_eq!(v["workload"], Value::Null);
    }
}
