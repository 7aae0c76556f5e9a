//! Flag values and combinations clap cannot check, checked before anything is read or sent:
//! each refusal is one line naming the flags (exit code 2), as a bad field of a file is.

use crate::core::naming;

/// A flag's value, or two flags together, cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlagError {
    /// `-n` is not a name a Build's namespace could have.
    #[error(
        "-n/--namespace {0:?}: not a valid organization (a Build namespace: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
    )]
    Organization(String),
    /// `-n` was given to a command with no Build it could apply to.
    #[error(
        "-n/--namespace {0:?} is the organization of Builds that name none, and no BUILD was given; the bundle's namespace is the value `namespace` (--set namespace={0})"
    )]
    OrganizationWithoutBuilds(String),
    /// Two flags that mean nothing together.
    #[error("{first} cannot be combined with {second}: {why}")]
    Conflict {
        first: &'static str,
        second: &'static str,
        why: &'static str,
    },
}

/// The organization of Builds that name none, when `-n` is not given.
pub const DEFAULT_ORGANIZATION: &str = "default";

/// `-n`: the organization given, checked as `metadata.namespace` is checked in a Build file
/// (never slugified: a name the user typed is used as typed, or refused), else the default.
pub fn organization(given: Option<&str>) -> Result<&str, FlagError> {
    match given {
        None => Ok(DEFAULT_ORGANIZATION),
        Some(org) if naming::is_dns_label(org) => Ok(org),
        Some(org) => Err(FlagError::Organization(org.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organization_is_used_as_typed_or_refused() {
        assert_eq!(organization(None), Ok("default"));
        assert_eq!(organization(Some("acme-2")), Ok("acme-2"));
        for bad in ["Bad Org", "ACME", "-acme", "acme.io", "", &"a".repeat(64)] {
            let e = organization(Some(bad)).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("-n/--namespace {bad:?}: not a valid organization")),
                "{e}"
            );
            assert_eq!(e.lines().count(), 1);
        }
    }
}
