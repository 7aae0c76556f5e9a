//! Tables and times as kubectl prints them: upper-case headers, columns three spaces apart,
//! `<none>` for nothing, ages like `5m12s` (kubectl's `HumanDuration`). Pure: the current time is
//! an argument. Cells are escaped ([`escape_controls`]) here, so no caller can forget it.

use crate::core::text::escape_controls;
use std::time::{Duration, SystemTime};

/// What a cell shows for a missing value.
pub const NONE: &str = "<none>";

/// `headers` (none: no header line) and `rows` as aligned text, one line per row; every cell
/// escaped.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let head = (!headers.is_empty()).then(|| headers.iter().map(|h| h.to_string()).collect());
    let cells: Vec<Vec<String>> = head
        .into_iter()
        .chain(
            rows.iter()
                .map(|r| r.iter().map(|c| escape_controls(c).into_owned()).collect()),
        )
        .collect();
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 3;
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `value`, or `<none>` when it is empty or missing.
pub fn or_none(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => NONE.to_owned(),
    }
}

/// kubectl's `HumanDuration`: exact while short, coarser as it grows (`45s`, `3m12s`, `25m`,
/// `5h3m`, `30h`, `3d4h`, `90d`, `2y10d`).
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if days < 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// The time an RFC 3339 timestamp is, if it is one.
pub fn parse_time(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(ts).ok()
}

/// How long before `now` the timestamp was (`<unknown>` when it is missing or unreadable; a
/// time slightly ahead of our clock counts as now, as kubectl does).
pub fn age(ts: Option<&str>, now: SystemTime) -> String {
    let Some(t) = ts.and_then(parse_time) else {
        return "<unknown>".to_owned();
    };
    match now.duration_since(t) {
        Ok(d) => human_duration(d),
        Err(ahead) if ahead.duration() <= Duration::from_secs(1) => "0s".to_owned(),
        Err(_) => "<invalid>".to_owned(),
    }
}

/// How long from `start` to `end` (to `now` while not ended).
pub fn duration(start: Option<&str>, end: Option<&str>, now: SystemTime) -> Option<String> {
    let start = parse_time(start?)?;
    let end = match end {
        Some(e) => parse_time(e)?,
        None => now,
    };
    end.duration_since(start).ok().map(human_duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_prints_them() {
        let cases = [
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (25 * 60 + 7, "25m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 3 * 60, "5h3m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (90 * 86400, "90d"),
            (2 * 365 * 86400 + 10 * 86400, "2y10d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}");
        }
    }

    #[test]
    fn ages_and_durations_from_timestamps() {
        let now = parse_time("2026-01-01T00:10:00Z").unwrap();
        assert_eq!(age(Some("2026-01-01T00:05:00Z"), now), "5m");
        assert_eq!(age(Some("2026-01-01T00:10:01Z"), now), "0s");
        assert_eq!(age(Some("2026-01-01T01:00:00Z"), now), "<invalid>");
        assert_eq!(age(Some("yesterday"), now), "<unknown>");
        assert_eq!(age(None, now), "<unknown>");
        assert_eq!(
            duration(
                Some("2026-01-01T00:00:00Z"),
                Some("2026-01-01T00:05:06Z"),
                now
            )
            .as_deref(),
            Some("5m6s")
        );
        assert_eq!(
            duration(Some("2026-01-01T00:09:00Z"), None, now).as_deref(),
            Some("60s")
        );
        assert_eq!(duration(None, None, now), None);
    }

    #[test]
    fn columns_align_and_cells_are_escaped() {
        let rows = vec![
            vec!["acme".into(), "b\u{1b}[2J".into(), or_none(None)],
            vec!["a".into(), "build-long".into(), "img".into()],
        ];
        let t = render(&["ORG", "BUILD", "IMAGE"], &rows);
        assert_eq!(
            t,
            "ORG    BUILD        IMAGE\n\
             acme   b\\e[2J       <none>\n\
             a      build-long   img\n"
        );
    }
}
