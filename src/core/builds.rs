//! Builds named on the command line the way the Argo CLI names workflows (`ORG/BUILD`, no spec
//! file), and the pure decision of `stop`. Finding the build objects is `lifecycle::find`'s; what
//! a build object says is its engine's.

use serde::Serialize;
use std::fmt;

/// A build on the build plane: its organization and its Build's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuildRef {
    pub organization: String,
    pub build: String,
}

/// An argument is not `ORG/BUILD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildRefError {
    /// No `/`, or more than one.
    #[error("{arg:?} is not ORG/BUILD")]
    Shape { arg: String },
    /// The organization is not a valid namespace name.
    #[error("{arg}: organization {message}")]
    Organization { arg: String, message: String },
    /// The build is not a valid object name.
    #[error("{arg}: build {message}")]
    Build { arg: String, message: String },
}

impl BuildRef {
    /// `ORG/BUILD`, each part checked as a Build file's `metadata.namespace` and `metadata.name`
    /// are checked.
    pub fn parse(arg: &str) -> Result<BuildRef, BuildRefError> {
        let Some((org, build)) = arg.split_once('/').filter(|(_, b)| !b.contains('/')) else {
            return Err(BuildRefError::Shape { arg: arg.into() });
        };
        super::spec::check_organization(org).map_err(|message| BuildRefError::Organization {
            arg: arg.into(),
            message,
        })?;
        super::spec::check_build_name(build).map_err(|message| BuildRefError::Build {
            arg: arg.into(),
            message,
        })?;
        Ok(BuildRef {
            organization: org.into(),
            build: build.into(),
        })
    }
}

impl fmt::Display for BuildRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.organization, self.build)
    }
}

/// How a running build is asked to stop, in Argo's terms (`spec.shutdown`): `Stop` lets exit
/// handlers run, `Terminate` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StopMode {
    Stop,
    Terminate,
}

impl StopMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            StopMode::Stop => "Stop",
            StopMode::Terminate => "Terminate",
        }
    }

    /// The mode an engine recorded, if it is one of ours.
    pub fn parse(s: &str) -> Option<StopMode> {
        match s {
            "Stop" => Some(StopMode::Stop),
            "Terminate" => Some(StopMode::Terminate),
            _ => None,
        }
    }
}

impl fmt::Display for StopMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `stop` does with one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopDecision {
    /// Ask the build object to stop this way (one patch).
    Request(StopMode),
    /// The same was asked already: nothing to send.
    AlreadyRequested(StopMode),
    /// The build finished: there is nothing to stop (Argo refuses too: "cannot shutdown a
    /// completed workflow").
    Finished,
}

/// Argo's rule: a finished build cannot be stopped. Asking again the same way sends nothing;
/// `Terminate` may follow `Stop` (exit handlers that hang are then cut short), but `Stop` never
/// replaces `Terminate`: the weaker request would not undo what the stronger one started.
pub fn decide_stop(finished: bool, requested: Option<StopMode>, wanted: StopMode) -> StopDecision {
    match (finished, requested) {
        (true, _) => StopDecision::Finished,
        (false, Some(StopMode::Terminate)) => StopDecision::AlreadyRequested(StopMode::Terminate),
        (false, Some(r)) if r == wanted => StopDecision::AlreadyRequested(r),
        (false, _) => StopDecision::Request(wanted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_slash_build_is_checked_like_a_build_file() {
        let r = BuildRef::parse("acme/greeter-build.v2").unwrap();
        assert_eq!(
            (r.organization.as_str(), r.build.as_str()),
            ("acme", "greeter-build.v2")
        );
        assert_eq!(r.to_string(), "acme/greeter-build.v2");
        for shape in ["acme", "a/b/c", ""] {
            assert!(
                matches!(BuildRef::parse(shape), Err(BuildRefError::Shape { .. })),
                "{shape}"
            );
        }
        let e = BuildRef::parse("Acme/b").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Acme/b: organization \"Acme\" is not a valid namespace name"),
            "{e}"
        );
        let e = BuildRef::parse("acme/B_1").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("acme/B_1: build \"B_1\" is not a valid object name"),
            "{e}"
        );
        assert!(BuildRef::parse("acme/").is_err());
        assert!(BuildRef::parse("/b").is_err());
    }

    #[test]
    fn stop_follows_argo() {
        use StopDecision::*;
        use StopMode::*;
        assert_eq!(decide_stop(true, None, Stop), Finished);
        assert_eq!(decide_stop(true, Some(Stop), Terminate), Finished);
        assert_eq!(decide_stop(false, None, Stop), Request(Stop));
        assert_eq!(decide_stop(false, Some(Stop), Stop), AlreadyRequested(Stop));
        assert_eq!(
            decide_stop(false, Some(Stop), Terminate),
            Request(Terminate)
        );
        assert_eq!(
            decide_stop(false, Some(Terminate), Stop),
            AlreadyRequested(Terminate)
        );
        assert_eq!(
            decide_stop(false, Some(Terminate), Terminate),
            AlreadyRequested(Terminate)
        );
        assert_eq!(StopMode::parse("Terminate"), Some(Terminate));
        assert_eq!(StopMode::parse("stop"), None);
    }
}
