//! Which of a call driver's sources woke it, so that a wake-up polls only
//! those.
//!
//! The driver waits on about ten things at once (both sockets, the core's
//! deadline, the lease, shutdown, the answering-machine verdict, a key-press
//! update...). `tokio::select!` polls every one of them on every wake-up,
//! and a call wakes up 50 times a second for Twilio's frames alone: each
//! poll of the other socket made its WebSocket reader zero its read buffer
//! and try a read, and each poll of the shutdown and lease signals took
//! their waiter lists' locks. Here every source gets a waker of its own
//! that raises the source's flag before waking the task; the driver polls a
//! source only when its flag is up (or it has just given something: it may
//! have more).
//!
//! The rule that keeps a source from being forgotten: its flag is up when
//! it is new or replaced ([`Wakes::due`]), and after every poll that
//! returned something; after a poll that returned `Pending`, the source
//! itself holds the waker that raises it again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// One flag per source, and the wakers that raise them.
#[derive(Debug)]
pub struct Wakes {
    shared: Arc<Shared>,
    wakers: Vec<Waker>,
    /// Flags taken from `shared`, not yet polled.
    due: u32,
}

#[derive(Debug, Default)]
struct Shared {
    raised: AtomicU32,
    task: AtomicWaker,
}

struct SourceWaker {
    shared: Arc<Shared>,
    flag: u32,
}

impl Wake for SourceWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.raised.fetch_or(self.flag, Ordering::AcqRel);
        self.shared.task.wake();
    }
}

impl Wakes {
    /// Flags for sources `0..sources` (at most 32), all up: each is polled
    /// once to begin with.
    pub fn new(sources: u32) -> Wakes {
        assert!(sources <= 32, "at most 32 sources");
        let shared = Arc::new(Shared::default());
        let wakers = (0..sources)
            .map(|i| {
                Waker::from(Arc::new(SourceWaker {
                    shared: shared.clone(),
                    flag: 1 << i,
                }))
            })
            .collect();
        let all = if sources == 32 {
            u32::MAX
        } else {
            (1 << sources) - 1
        };
        Wakes {
            shared,
            wakers,
            due: all,
        }
    }

    /// Start of a poll of the driver: the task's waker is what the sources'
    /// wakers wake, and the flags raised since the last poll become due.
    pub fn begin(&mut self, cx: &Context<'_>) {
        self.shared.task.register(cx.waker());
        self.due |= self.shared.raised.swap(0, Ordering::AcqRel);
    }

    /// Poll `source` if its flag is up, with its own waker. `Pending` also
    /// when it was not due.
    pub fn poll<T>(
        &mut self,
        source: u32,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let flag = 1 << source;
        if self.due & flag == 0 {
            return Poll::Pending;
        }
        self.due &= !flag;
        let mut cx = Context::from_waker(&self.wakers[source as usize]);
        let polled = poll(&mut cx);
        if polled.is_ready() {
            // It may have more at once.
            self.due |= flag;
        }
        polled
    }

    /// Poll `source` at the next turn: it is new, replaced or re-armed.
    pub fn due(&mut self, source: u32) {
        self.due |= 1 << source;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_source_is_polled_first_then_only_after_its_waker_fires() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(count.clone());
        let cx = Context::from_waker(&task);
        let mut wakes = Wakes::new(2);
        let mut kept: Option<Waker> = None;
        let mut polls = 0;

        wakes.begin(&cx);
        let r: Poll<()> = wakes.poll(0, |cx| {
            polls += 1;
            kept = Some(cx.waker().clone());
            Poll::Pending
        });
        assert!(r.is_pending());
        assert_eq!(polls, 1);

        // Not woken: not polled.
        wakes.begin(&cx);
        let _ = wakes.poll(0, |_| -> Poll<()> {
            polls += 1;
            Poll::Pending
        });
        assert_eq!(polls, 1);

        // Its waker fires: the task is woken and the source polled.
        kept.take().unwrap().wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        wakes.begin(&cx);
        let r = wakes.poll(0, |_| {
            polls += 1;
            Poll::Ready(7)
        });
        assert_eq!(r, Poll::Ready(7));
        // Having given something, it is polled again at the next turn.
        wakes.begin(&cx);
        let _ = wakes.poll(0, |_| -> Poll<()> {
            polls += 1;
            Poll::Pending
        });
        assert_eq!(polls, 3);

        // The other source was due from the start; `due` raises it again.
        let mut other = 0;
        let _ = wakes.poll(1, |_| -> Poll<()> {
            other += 1;
            Poll::Pending
        });
        let _ = wakes.poll(1, |_| -> Poll<()> {
            other += 1;
            Poll::Pending
        });
        wakes.due(1);
        let _ = wakes.poll(1, |_| -> Poll<()> {
            other += 1;
            Poll::Pending
        });
        assert_eq!(other, 2);
    }
}
