//! Long-lived background tasks that outlive their own panics.
//!
//! A tokio task that panics ends silently: a node whose sweeper or heartbeat loop died
//! would look healthy and slowly rot. [`supervised`] runs such a loop and, when it
//! panics, logs it and starts it again after a pause that doubles up to
//! [`MAX_RESTART_DELAY`], so that a loop that fails at once does not spin.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::task::JoinHandle;

/// The first pause before a panicked task is started again.
pub const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
/// The longest pause before a panicked task is started again.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// Runs one step of a long-lived actor or loop (a heartbeat, a delivery) so that its
/// panic is logged and the actor goes on with its next step instead of dying with it.
/// `None` if the step panicked.
pub async fn contain<T>(name: &'static str, step: impl Future<Output = T>) -> Option<T> {
    match AssertUnwindSafe(step).catch_unwind().await {
        Ok(value) => Some(value),
        Err(panic) => {
            tracing::error!(
                task = name,
                "a step panicked and was skipped: {}",
                panic_text(&*panic)
            );
            None
        }
    }
}

/// The text of a caught panic.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs the task that `start` makes until it returns, starting a new one each time one
/// panics. Abort the handle to stop it.
pub fn supervised<F, Fut>(name: &'static str, mut start: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut delay = FIRST_RESTART_DELAY;
        loop {
            match AssertUnwindSafe(start()).catch_unwind().await {
                Ok(()) => return,
                Err(panic) => {
                    let text = panic_text(&*panic);
                    tracing::error!(
                        task = name,
                        ?delay,
                        "a background task panicked: {text}; restarting it"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RESTART_DELAY);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_contained_step_that_panics_is_skipped() {
        assert_eq!(contain("test", async { 7 }).await, Some(7));
        let failed: Option<()> = contain("test", async { panic!("a bad step") }).await;
        assert_eq!(failed, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_started_again_until_it_returns() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let task = supervised("test", move || {
            let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run < 3 {
                    panic!("run {run} fails");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("it ends once a run returns")
            .expect("the supervisor itself does not panic");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
