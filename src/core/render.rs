//! The chart renderer: one minijinja environment, strict about undefined values, whose
//! templates can reach nothing but the values they are given (no cluster, files, clock or
//! environment).
//!
//! Template syntax: `[[ expr ]]`, `[% stmt %]`, `[# comment #]`, so that Argo's own
//! `{{workflow.parameters.x}}` placeholders are written literally in the templates.

use super::catalog;
use super::manifest::Manifest;
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error as TplError, ErrorKind, UndefinedBehavior, Value as TplValue};
use serde_json::{Map, Value, json};

include!(concat!(env!("OUT_DIR"), "/chart_files.rs"));

/// Rendering the chart failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed (an undefined value, a failed check); the text includes the chain.
    #[error("{template}: {message}")]
    Template { template: String, message: String },
    /// A template rendered something that is not YAML or not an object (a chart bug).
    #[error("{template}: rendered an invalid object: {message}")]
    Output { template: String, message: String },
    /// A file the chart needs is missing from it.
    #[error("chart file {0} is missing")]
    MissingFile(String),
}

/// The chart's files, by path relative to the chart root.
#[derive(Debug, Clone)]
pub struct Chart {
    files: Vec<(String, String)>,
}

/// `Chart.yaml`: what the labels and image tags are made of.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMeta {
    pub name: String,
    pub version: String,
    pub app_version: String,
}

impl Chart {
    /// The chart compiled into the binary.
    pub fn builtin() -> Chart {
        Chart {
            files: CHART_FILES
                .iter()
                .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
                .collect(),
        }
    }

    /// This chart with the file at `path` (relative to the chart root) replaced or added.
    pub fn with_file(mut self, path: &str, content: &str) -> Chart {
        self.files.retain(|(p, _)| p != path);
        self.files.push((path.to_owned(), content.to_owned()));
        self.files.sort();
        self
    }

    pub fn file(&self, path: &str) -> Result<&str, RenderError> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.as_str())
            .ok_or_else(|| RenderError::MissingFile(path.to_owned()))
    }

    pub fn meta(&self) -> Result<ChartMeta, RenderError> {
        serde_saphyr::from_str(self.file("Chart.yaml")?).map_err(|e| RenderError::Output {
            template: "Chart.yaml".into(),
            message: e.to_string(),
        })
    }

    /// Default values (`values.yaml`).
    pub fn default_values(&self) -> Result<Value, RenderError> {
        serde_saphyr::from_str(self.file("values.yaml")?).map_err(|e| RenderError::Output {
            template: "values.yaml".into(),
            message: e.to_string(),
        })
    }

    /// `values.schema.json`.
    pub fn values_schema(&self) -> Result<Value, RenderError> {
        serde_json::from_str(self.file("values.schema.json")?).map_err(|e| RenderError::Output {
            template: "values.schema.json".into(),
            message: e.to_string(),
        })
    }

    fn templates(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .filter(|(p, _)| p.starts_with("templates/") && p.ends_with(".yaml"))
            .map(|(p, c)| (p.as_str(), c.as_str()))
    }

    fn scripts(&self) -> Vec<(String, String)> {
        self.files
            .iter()
            .filter_map(|(p, c)| {
                p.strip_prefix("scripts/")
                    .map(|n| (n.to_owned(), c.clone()))
            })
            .collect()
    }
}

/// Labels every object of the bundle carries: the upstream helper's set, managed by
/// buildplane, plus `global.commonLabels`.
pub fn common_labels(meta: &ChartMeta, values: &Value) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/name": meta.name,
        "app.kubernetes.io/instance": meta.name,
        "app.kubernetes.io/version": meta.app_version,
        "app.kubernetes.io/managed-by": "buildplane",
        "app.kubernetes.io/part-of": "openchoreo",
        "buildplane.openchoreo.dev/chart": format!("{}-{}", meta.name, meta.version),
    });
    if let Some(extra) = values
        .pointer("/global/commonLabels")
        .and_then(Value::as_object)
    {
        for (k, v) in extra {
            labels[k] = v.clone();
        }
    }
    labels
}

/// The environment factory: strict undefined, the custom delimiters, and the two helpers
/// templates may use — `script(name)` (a file of `scripts/`) and `fail(message)`.
pub fn environment(chart: &Chart) -> Environment<'static> {
    let mut env = base_environment();
    let scripts = chart.scripts();
    env.add_function("script", move |name: &str| -> Result<String, TplError> {
        scripts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| {
                TplError::new(
                    ErrorKind::InvalidOperation,
                    format!("no script {name:?} in the chart"),
                )
            })
    });
    env
}

/// What every environment of ours has: strict undefined, the custom delimiters, trailing
/// newlines kept, and `fail(message)`. The per-build templates (`core::templates`) use it as
/// it is.
pub fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .block_delimiters("[%", "%]")
            .variable_delimiters("[[", "]]")
            .comment_delimiters("[#", "#]")
            .build()
            .expect("fixed delimiters are valid"),
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.add_function("fail", |message: &str| -> Result<String, TplError> {
        Err(TplError::new(
            ErrorKind::InvalidOperation,
            message.to_owned(),
        ))
    });
    env
}

/// A template error with its causes, on one line.
pub fn error_chain(e: &TplError) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Renders every template of the chart with merged `values` into objects (unsorted).
pub fn render_chart(chart: &Chart, values: &Value) -> Result<Vec<Manifest>, RenderError> {
    let meta = chart.meta()?;
    let mut env = environment(chart);
    let templates: Vec<(String, String)> = chart
        .templates()
        .map(|(p, c)| (p.to_owned(), c.to_owned()))
        .collect();
    for (path, source) in &templates {
        env.add_template_owned(path.clone(), source.clone())
            .map_err(|e| RenderError::Template {
                template: path.clone(),
                message: error_chain(&e),
            })?;
    }
    let ctx = TplValue::from_serialize(json!({
        "values": values,
        "chart": meta,
        "labels": common_labels(&meta, values),
        "templates": catalog::TEMPLATES,
    }));
    let mut out = Vec::new();
    for (path, _) in &templates {
        let text = env
            .get_template(path)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| RenderError::Template {
                template: path.clone(),
                message: error_chain(&e),
            })?;
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| RenderError::Output {
                template: path.clone(),
                message: e.to_string(),
            })?;
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let m = Manifest::new(doc).map_err(|e| RenderError::Output {
                template: path.clone(),
                message: e.to_string(),
            })?;
            out.push(m);
        }
    }
    Ok(out)
}

/// Starts from the chart's defaults.
pub fn defaults(chart: &Chart) -> Result<Value, RenderError> {
    let v = chart.default_values()?;
    Ok(if v.is_null() {
        Value::Object(Map::new())
    } else {
        v
    })
}
