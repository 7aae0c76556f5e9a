//! The live display of `watch` on a terminal: a block of one line per unfinished build with its
//! steps (its engine's), redrawn in place as steps change; finished builds' reports scroll above it. The
//! frame is a pure function of the state, so it is tested without a terminal.
//!
//! Every line of a frame fits the terminal's width (cut with `…`) and the frame fits its height,
//! so a frame takes exactly as many screen lines as it has: erasing it by moving up that many
//! lines leaves nothing stale behind. (A line wider than the terminal wraps onto two screen
//! lines, and an erase that counts one left a copy of the frame in the scrollback each redraw.)

use crate::core::progress::Phase;
use std::collections::BTreeMap;

/// At most this many builds are drawn; the rest are counted on one line.
pub const MAX_ROWS: usize = 20;

/// Unfinished builds and their steps' phases, in the order they were given.
#[derive(Debug, Default)]
pub struct Board {
    order: Vec<String>,
    /// Per build: its engine's steps and their phases.
    steps: BTreeMap<String, (&'static [&'static str], Vec<Phase>)>,
    /// Lines of the frame last drawn (what `redraw` erases).
    drawn: usize,
    /// The terminal's columns and rows, when known.
    size: Option<(u16, u16)>,
}

/// `line` cut to at most `max` characters, its last one `…` when cut. Every character a board
/// line holds is one column wide: object names are ASCII, the marks are single-width.
fn fit(line: String, max: usize) -> String {
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    if max > 0 {
        cut.push('…');
    }
    cut
}

fn mark(p: Phase) -> &'static str {
    match p {
        Phase::Pending | Phase::Unknown => "·",
        Phase::Running => "▶",
        Phase::Succeeded => "✓",
        Phase::Failed => "✗",
    }
}

fn short(step: &str) -> &str {
    step.strip_suffix("-step").unwrap_or(step)
}

/// One build's steps as the board draws them: `✓ clone  ▶ build  · push  · workload-create`
/// (also `get`'s progress line).
pub fn step_cells<'a>(steps: impl IntoIterator<Item = (&'a str, Phase)>) -> String {
    let cells: Vec<String> = steps
        .into_iter()
        .map(|(s, p)| format!("{} {}", mark(p), short(s)))
        .collect();
    cells.join("  ")
}

impl Board {
    /// The builds with the steps each runs.
    pub fn new(builds: impl IntoIterator<Item = (String, &'static [&'static str])>) -> Board {
        let builds: Vec<(String, &'static [&'static str])> = builds.into_iter().collect();
        let order: Vec<String> = builds.iter().map(|(b, _)| b.clone()).collect();
        let steps = builds
            .into_iter()
            .map(|(b, names)| (b, (names, vec![Phase::Pending; names.len()])))
            .collect();
        Board {
            order,
            steps,
            drawn: 0,
            size: None,
        }
    }

    /// The terminal's size (columns, rows), read before each redraw: frames fit it.
    pub fn resize(&mut self, size: Option<(u16, u16)>) {
        self.size = size.filter(|(c, r)| *c > 0 && *r > 0);
    }

    /// A step of `build` changed phase.
    pub fn step(&mut self, build: &str, step: &str, phase: Phase) {
        if let Some((names, row)) = self.steps.get_mut(build)
            && let Some(i) = names.iter().position(|s| *s == step)
        {
            row[i] = phase;
        }
    }

    /// `build` finished: it leaves the board.
    pub fn finish(&mut self, build: &str) {
        self.steps.remove(build);
        self.order.retain(|b| b != build);
    }

    /// The lines to draw now: at most [`MAX_ROWS`] builds, fewer when the terminal is lower (two
    /// rows stay free for the reports above and the cursor), each line narrower than it.
    pub fn frame(&self) -> Vec<String> {
        let (cols, rows) = match self.size {
            Some((c, r)) => (usize::from(c), usize::from(r)),
            None => (usize::MAX, usize::MAX),
        };
        let mut shown = MAX_ROWS.min(rows.saturating_sub(2)).max(1);
        if self.order.len() > shown {
            // The last row counts the rest.
            shown = shown.saturating_sub(1);
        }
        let width = self.order.iter().map(|b| b.len()).max().unwrap_or(0);
        let mut lines: Vec<String> = self
            .order
            .iter()
            .take(shown)
            .map(|b| {
                let (names, phases) = &self.steps[b];
                let cells = step_cells(names.iter().copied().zip(phases.iter().copied()));
                format!("{b:width$}  {cells}")
            })
            .collect();
        if self.order.len() > shown {
            lines.push(format!("… and {} more", self.order.len() - shown));
        }
        // The last column stays empty: writing into it makes some terminals wrap early.
        let max = cols.saturating_sub(1).max(1);
        lines.into_iter().map(|l| fit(l, max)).collect()
    }

    /// Terminal output that erases the last frame, prints `above` (finished reports) and draws
    /// the current frame below it.
    pub fn redraw(&mut self, above: Option<&str>) -> String {
        let mut out = String::new();
        if self.drawn > 0 {
            // Up to the first line of the last frame, then clear to the end of the screen.
            out.push_str(&format!("\x1b[{}F\x1b[J", self.drawn));
        }
        if let Some(text) = above {
            out.push_str(text);
            out.push('\n');
        }
        let frame = self.frame();
        for line in &frame {
            out.push_str(line);
            out.push('\n');
        }
        self.drawn = frame.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[&str] = &[
        "clone-step",
        "build-step",
        "push-step",
        "workload-create-step",
    ];

    fn board(builds: impl IntoIterator<Item = String>) -> Board {
        Board::new(builds.into_iter().map(|b| (b, STEPS)))
    }

    #[test]
    fn rows_follow_steps_and_leave_when_finished() {
        let mut b = board(["acme/a".to_owned(), "acme/bb".to_owned()]);
        b.step("acme/a", "clone-step", Phase::Succeeded);
        b.step("acme/a", "build-step", Phase::Running);
        b.step("acme/bb", "clone-step", Phase::Failed);
        assert_eq!(
            b.frame(),
            [
                "acme/a   ✓ clone  ▶ build  · push  · workload-create",
                "acme/bb  ✗ clone  · build  · push  · workload-create",
            ]
        );
        b.finish("acme/bb");
        assert_eq!(b.frame().len(), 1);
        b.finish("acme/a");
        assert!(b.frame().is_empty());
    }

    #[test]
    fn redraw_erases_exactly_the_last_frame() {
        let mut b = board(["x/1".to_owned(), "x/2".to_owned()]);
        let first = b.redraw(None);
        assert!(!first.contains('\x1b'), "nothing to erase yet");
        b.finish("x/1");
        let second = b.redraw(Some("x/1 Succeeded"));
        assert!(second.starts_with("\x1b[2F\x1b[J"), "{second:?}");
        assert!(second.contains("x/1 Succeeded\n"));
        assert!(b.redraw(None).starts_with("\x1b[1F\x1b[J"));
    }

    #[test]
    fn many_builds_are_counted_not_drawn() {
        let b = board((0..25).map(|i| format!("o/b{i}")));
        let f = b.frame();
        assert_eq!(f.len(), MAX_ROWS);
        assert_eq!(f.last().unwrap(), "… and 6 more");
    }

    #[test]
    fn frames_fit_a_small_terminal() {
        let mut b = board((0..30).map(|i| format!("default/reading-list-service-build-{i:08}")));
        b.resize(Some((80, 24)));
        assert_eq!(b.frame().len(), MAX_ROWS);
        b.resize(Some((80, 10)));
        let f = b.frame();
        assert_eq!(f.len(), 8, "two rows stay free");
        assert_eq!(f.last().unwrap(), "… and 23 more");
        for line in &f {
            assert!(line.chars().count() <= 79, "{line}");
        }
        assert!(f[0].ends_with('…'), "{}", f[0]);
        b.resize(Some((20, 3)));
        assert_eq!(b.frame(), ["… and 30 more"]);
    }

    /// What the terminal receives of `out` through a tty, which turns `\n` into `\r\n`.
    fn tty(out: String) -> Vec<u8> {
        out.replace('\n', "\r\n").into_bytes()
    }

    /// Every line a terminal holds: its scrollback, oldest first, then its screen.
    fn history(term: &mut vt100::Parser) -> Vec<String> {
        let cols = term.screen().size().1.get();
        term.screen_mut().set_scrollback(usize::MAX);
        let back = term.screen().scrollback();
        let mut lines = Vec::new();
        for offset in (1..=back).rev() {
            term.screen_mut().set_scrollback(offset);
            lines.extend(term.screen().rows(0, cols).next());
        }
        term.screen_mut().set_scrollback(0);
        lines.extend(term.screen().rows(0, cols));
        lines
    }

    /// The README's own fixtures watched on an 80×24 terminal (a real terminal emulator parses
    /// the output): no redraw leaves a stale copy of a row behind.
    #[test]
    fn redraws_leave_no_stale_rows_on_an_80_by_24_terminal() {
        let builds = [
            "acme/react-starter-build-01",
            "acme/patient-service-build-01",
            "default/greeter-build-0a1b2c3d",
            "default/reading-list-service-build-7c9e4a1b",
            "default/time-service-build-01",
        ];
        let mut b = board(builds.iter().map(|s| s.to_string()));
        b.resize(Some((80, 24)));
        let mut term = vt100::Parser::new(24.try_into().unwrap(), 80.try_into().unwrap(), 1000);
        term.process(&tty(b.redraw(None)));
        for (i, build) in builds.iter().enumerate() {
            for step in STEPS {
                for phase in [Phase::Running, Phase::Succeeded] {
                    b.step(build, step, phase);
                    term.process(&tty(b.redraw(None)));
                }
            }
            b.finish(build);
            term.process(&tty(b.redraw(Some(&format!("done {i}")))));
        }
        let lines = history(&mut term);
        let rows: Vec<&String> = lines
            .iter()
            .filter(|l| builds.iter().any(|b| l.starts_with(&b[..10])) || l.contains('…'))
            .collect();
        assert!(rows.is_empty(), "stale rows: {rows:#?}");
        let reports: Vec<&String> = lines.iter().filter(|l| l.starts_with("done ")).collect();
        assert_eq!(reports, ["done 0", "done 1", "done 2", "done 3", "done 4"]);
    }
}
