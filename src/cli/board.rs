//! The live display of `watch` on a terminal: a block of one line per unfinished build with its
//! steps (its engine's), redrawn in place as steps change; finished builds' reports scroll above it. The
//! frame is a pure function of the state, so it is tested without a terminal.

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
        }
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

    /// The lines to draw now.
    pub fn frame(&self) -> Vec<String> {
        let width = self.order.iter().map(|b| b.len()).max().unwrap_or(0);
        let mut lines: Vec<String> = self
            .order
            .iter()
            .take(MAX_ROWS)
            .map(|b| {
                let (names, phases) = &self.steps[b];
                let cells = step_cells(names.iter().copied().zip(phases.iter().copied()));
                format!("{b:width$}  {cells}")
            })
            .collect();
        if self.order.len() > MAX_ROWS {
            lines.push(format!("… and {} more", self.order.len() - MAX_ROWS));
        }
        lines
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
        assert_eq!(f.len(), MAX_ROWS + 1);
        assert_eq!(f.last().unwrap(), "… and 5 more");
    }
}
