//! SIGTERM and SIGINT for every long-running command (`sync`, `controller`): installed before
//! the first request, so a failure to install is an error at start and not a process that
//! cannot be stopped.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Both handlers, installed.
pub struct Shutdown {
    term: Signal,
    int: Signal,
}

impl Shutdown {
    pub fn install() -> std::io::Result<Shutdown> {
        Ok(Shutdown {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the next SIGTERM or SIGINT.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }

    /// A future that resolves on the next SIGTERM or SIGINT.
    pub async fn wait(mut self) {
        self.recv().await;
    }
}
