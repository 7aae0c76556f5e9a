//! Where a Workload goes under a directory or repository: the path template shared by the
//! directory and Git targets, and the rule that the result stays inside the target.

/// The default path of a Workload under a directory or repository.
pub const DEFAULT_PATH_TEMPLATE: &str = "{org}/{project}/{component}/workload.yaml";

/// What a path template may use.
#[derive(Debug, Clone)]
pub struct PathVars<'a> {
    pub org: &'a str,
    pub project: &'a str,
    pub component: &'a str,
    pub build: &'a str,
}

/// A path template or its result is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PathError {
    /// A `{name}` that is not one of org, project, component, build.
    #[error(
        "path template {template:?}: unknown placeholder {{{name}}} (use org, project, component, build)"
    )]
    UnknownPlaceholder { template: String, name: String },
    /// A `{` without its `}`.
    #[error("path template {template:?}: unclosed '{{'")]
    Unclosed { template: String },
    /// The result would leave the target directory or is empty.
    #[error(
        "path {path:?} must be relative and stay inside the target (no '..', not absolute, not empty)"
    )]
    Escapes { path: String },
}

/// Expands `{org}`, `{project}`, `{component}`, `{build}` in `template`. Values are taken as
/// they are (they are Kubernetes names or owner names); the result must stay inside the target.
pub fn expand_path(template: &str, vars: &PathVars<'_>) -> Result<String, PathError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| PathError::Unclosed {
            template: template.to_owned(),
        })?;
        let value = match &after[..close] {
            "org" => vars.org,
            "project" => vars.project,
            "component" => vars.component,
            "build" => vars.build,
            other => {
                return Err(PathError::UnknownPlaceholder {
                    template: template.to_owned(),
                    name: other.to_owned(),
                });
            }
        };
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    check_relative(&out)?;
    Ok(out)
}

/// A repository- or directory-relative path: not empty, not absolute, no `.`/`..` parts.
pub fn check_relative(path: &str) -> Result<(), PathError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..");
    if bad {
        Err(PathError::Escapes {
            path: path.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// What one emit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emitted {
    /// The content was written (or committed).
    Written,
    /// The target already held exactly this content.
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> PathVars<'static> {
        PathVars {
            org: "acme",
            project: "shop",
            component: "cart",
            build: "cart-build-1",
        }
    }

    #[test]
    fn expands_the_default_template() {
        assert_eq!(
            expand_path(DEFAULT_PATH_TEMPLATE, &vars()).unwrap(),
            "acme/shop/cart/workload.yaml"
        );
        assert_eq!(
            expand_path("builds/{build}.yaml", &vars()).unwrap(),
            "builds/cart-build-1.yaml"
        );
    }

    #[test]
    fn refuses_bad_templates_and_escaping_paths() {
        assert!(matches!(
            expand_path("{team}/x", &vars()),
            Err(PathError::UnknownPlaceholder { .. })
        ));
        assert!(matches!(
            expand_path("{org", &vars()),
            Err(PathError::Unclosed { .. })
        ));
        let evil = PathVars {
            project: "..",
            ..vars()
        };
        assert!(matches!(
            expand_path(DEFAULT_PATH_TEMPLATE, &evil),
            Err(PathError::Escapes { .. })
        ));
        for p in ["/etc/passwd", "a//b", "./a", "a/../b", ""] {
            assert!(check_relative(p).is_err(), "{p}");
        }
    }
}
