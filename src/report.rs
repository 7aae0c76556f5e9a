//! How errors read when they leave the program: one line, each cause once, outermost first.

/// `e` and its causes on one line, joined with ": " (what `main`, Build conditions and emit
/// reports print; each error's own message never repeats its source).
pub fn error_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_once() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(super::error_line(&e), "outer: inner");
    }
}
