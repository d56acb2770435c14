//! Where the callee's ear is in the agent's audio: the bookkeeping behind barge-in.
//!
//! The model produces audio faster than real time and Twilio buffers it. After
//! the chunks we forward we send a Twilio `mark` (after every chunk, or once
//! per `RESERVOICE_MARK_MS` of audio, and always at the end of an item);
//! Twilio echoes a mark when the audio before it has played. Between echoes
//! we extrapolate on the call's audio clock (the inbound `media.timestamp`,
//! which advances in real time while audio plays), so fewer marks cost no
//! accuracy while the audio plays without a gap. When the callee interrupts, this tells us how many
//! milliseconds of each agent item were actually heard, which is what
//! `conversation.item.truncate` needs, so the model's memory of the
//! conversation matches what the restaurant heard.

use std::collections::{HashSet, VecDeque};

/// mu-law at 8 kHz: 8 bytes per millisecond.
pub const BYTES_PER_MS: u64 = 8;

#[derive(Debug, Clone)]
struct Item {
    item_id: String,
    /// Bytes forwarded to Twilio for this item.
    sent_bytes: u64,
    /// Milliseconds known to have played (from echoed marks).
    played_ms: u64,
    /// The model said this item's audio is complete.
    audio_done: bool,
}

impl Item {
    fn sent_ms(&self) -> u64 {
        self.sent_bytes / BYTES_PER_MS
    }
}

#[derive(Debug, Clone)]
struct PendingMark {
    name: String,
    item_id: String,
    /// Item position (ms) at the end of the audio before this mark.
    at_ms: u64,
}

/// Last point where we knew the playback position: (audio clock, item, position in item).
#[derive(Debug, Clone)]
struct Anchor {
    clock_ms: u64,
    item_id: String,
    position_ms: u64,
}

/// What an echoed mark meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Echo {
    /// Playback reached `played_ms` of `item_id`.
    Played {
        /// Agent item.
        item_id: String,
        /// Milliseconds of it played.
        played_ms: u64,
    },
    /// The echo of a mark we flushed with `clear`: the audio was discarded, ignore it.
    Flushed,
    /// A name we never sent (or already handled).
    Unknown,
}

/// One agent item cut off by a barge-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The assistant item.
    pub item_id: String,
    /// Milliseconds of it the callee heard (`audio_end_ms` of the truncate).
    pub audio_end_ms: u64,
    /// Milliseconds of it that had been forwarded.
    pub sent_ms: u64,
}

/// What to do about a barge-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    /// One `conversation.item.truncate` per item whose audio had not fully played.
    pub truncates: Vec<Cut>,
}

/// Audio forwarded since the last mark (no mark behind it yet).
#[derive(Debug, Clone)]
struct Tail {
    /// The item the latest of it belongs to.
    item_id: String,
    /// Bytes since the last mark (across items).
    bytes: u64,
}

/// Playback state of one call's outbound audio.
#[derive(Debug, Default)]
pub struct Playback {
    items: Vec<Item>,
    pending: VecDeque<PendingMark>,
    flushed: HashSet<String>,
    anchor: Option<Anchor>,
    counter: u64,
    tail: Option<Tail>,
}

impl Playback {
    /// Nothing of ours is buffered at Twilio (every mark came back, and no
    /// audio was sent after the last one).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.tail.is_none()
    }

    /// Whether some of `item_id`'s audio is still buffered at Twilio (or it
    /// may still get more audio).
    pub fn is_playing(&self, item_id: &str) -> bool {
        self.items.iter().any(|i| i.item_id == item_id)
    }

    /// Milliseconds of `item_id` forwarded so far.
    pub fn item_sent_ms(&self, item_id: &str) -> Option<u64> {
        self.items
            .iter()
            .find(|i| i.item_id == item_id)
            .map(Item::sent_ms)
    }

    /// Milliseconds of `item_id` heard by `clock_ms` (None if unknown or fully played).
    pub fn heard_ms_of(&self, item_id: &str, clock_ms: u64) -> Option<u64> {
        self.heard_ms(clock_ms)
            .into_iter()
            .find(|(id, _)| id == item_id)
            .map(|(_, ms)| ms)
    }

    /// Milliseconds of audio forwarded but not yet heard, by `clock_ms`.
    pub fn unplayed_ms(&self, clock_ms: u64) -> u64 {
        let heard = self.heard_ms(clock_ms);
        self.items
            .iter()
            .zip(heard)
            .map(|(i, (_, h))| i.sent_ms().saturating_sub(h))
            .sum()
    }

    /// Record `bytes` of audio for `item_id` forwarded at audio clock `clock_ms`;
    /// returns the name of the mark to send right after it.
    pub fn audio_sent(&mut self, item_id: &str, bytes: u64, clock_ms: u64) -> String {
        self.record_audio(item_id, bytes, clock_ms);
        self.tail = None;
        self.push_mark(item_id)
    }

    /// Record `bytes` of audio for `item_id` forwarded at audio clock
    /// `clock_ms`, and return the name of a mark to send right after it once
    /// `every_ms` of audio went without one (0: after every chunk). Audio
    /// left without a mark is marked by [`Playback::mark_tail`] when its
    /// item ends.
    pub fn audio_sent_every(
        &mut self,
        item_id: &str,
        bytes: u64,
        clock_ms: u64,
        every_ms: u64,
    ) -> Option<String> {
        self.record_audio(item_id, bytes, clock_ms);
        let unmarked = self.tail.as_ref().map_or(0, |t| t.bytes) + bytes;
        if every_ms == 0 || unmarked / BYTES_PER_MS >= every_ms {
            self.tail = None;
            return Some(self.push_mark(item_id));
        }
        match &mut self.tail {
            Some(tail) if tail.item_id == item_id => tail.bytes = unmarked,
            _ => {
                self.tail = Some(Tail {
                    item_id: item_id.to_string(),
                    bytes: unmarked,
                })
            }
        }
        None
    }

    /// A mark for the audio sent since the last one, if any (at the end of
    /// an item, so its end is always known).
    pub fn mark_tail(&mut self) -> Option<String> {
        let tail = self.tail.take()?;
        Some(self.push_mark(&tail.item_id))
    }

    fn record_audio(&mut self, item_id: &str, bytes: u64, clock_ms: u64) {
        // Nothing buffered at Twilio: playback of this audio starts now. With
        // marks every N ms the buffer may also have run dry since the last
        // echo (the clock says everything sent has played).
        let drained =
            self.pending.is_empty() && (self.tail.is_none() || self.unplayed_ms(clock_ms) == 0);
        if drained {
            let position_ms = self
                .items
                .iter()
                .find(|i| i.item_id == item_id)
                .map(|i| i.sent_ms())
                .unwrap_or(0);
            self.anchor = Some(Anchor {
                clock_ms,
                item_id: item_id.to_string(),
                position_ms,
            });
        }
        match self.items.iter_mut().find(|i| i.item_id == item_id) {
            Some(item) => item.sent_bytes += bytes,
            None => self.items.push(Item {
                item_id: item_id.to_string(),
                sent_bytes: bytes,
                played_ms: 0,
                audio_done: false,
            }),
        }
    }

    /// A mark at the end of the audio of `item_id` sent so far.
    fn push_mark(&mut self, item_id: &str) -> String {
        let at_ms = self
            .items
            .iter()
            .find(|i| i.item_id == item_id)
            .map_or(0, Item::sent_ms);
        self.counter += 1;
        let name = format!("{item_id}:{at_ms}:m{}", self.counter);
        self.pending.push_back(PendingMark {
            name: name.clone(),
            item_id: item_id.to_string(),
            at_ms,
        });
        name
    }

    /// The model finished the audio of `item_id`.
    pub fn audio_done(&mut self, item_id: &str) {
        if let Some(item) = self.items.iter_mut().find(|i| i.item_id == item_id) {
            item.audio_done = true;
        }
        self.forget_finished();
    }

    /// Twilio echoed mark `name` at audio clock `clock_ms`.
    pub fn mark_echoed(&mut self, name: &str, clock_ms: u64) -> Echo {
        if self.flushed.remove(name) {
            return Echo::Flushed;
        }
        let Some(pos) = self.pending.iter().position(|m| m.name == name) else {
            return Echo::Unknown;
        };
        // Marks play in order: everything before this one has played too.
        let mut reached = None;
        for mark in self.pending.drain(..=pos) {
            if let Some(item) = self.items.iter_mut().find(|i| i.item_id == mark.item_id) {
                item.played_ms = item.played_ms.max(mark.at_ms);
            }
            reached = Some(mark);
        }
        let Some(mark) = reached else {
            return Echo::Unknown;
        };
        // Audio plays in order: the items before this mark's item have played
        // to their end (their last audio may have had no mark of its own).
        if let Some(ix) = self.items.iter().position(|i| i.item_id == mark.item_id) {
            for item in &mut self.items[..ix] {
                item.played_ms = item.played_ms.max(item.sent_ms());
            }
        }
        self.anchor = Some(Anchor {
            clock_ms,
            item_id: mark.item_id.clone(),
            position_ms: mark.at_ms,
        });
        self.forget_finished();
        if !self.items.iter().any(|i| i.item_id == mark.item_id) {
            // That item played to its end just now: the next one starts playing.
            self.anchor = self.items.first().map(|next| Anchor {
                clock_ms,
                item_id: next.item_id.clone(),
                position_ms: 0,
            });
        }
        Echo::Played {
            item_id: mark.item_id,
            played_ms: mark.at_ms,
        }
    }

    fn forget_finished(&mut self) {
        let pending = &self.pending;
        let tail = self.tail.as_ref().map(|t| t.item_id.as_str());
        self.items.retain(|i| {
            !(i.audio_done
                && i.played_ms >= i.sent_ms()
                && tail != Some(i.item_id.as_str())
                && !pending.iter().any(|m| m.item_id == i.item_id))
        });
    }

    /// Milliseconds of `item_id` heard by now, by the clock.
    pub fn heard_ms(&self, clock_ms: u64) -> Vec<(String, u64)> {
        let mut heard: Vec<(String, u64)> = self
            .items
            .iter()
            .map(|i| (i.item_id.clone(), i.played_ms.min(i.sent_ms())))
            .collect();
        let Some(anchor) = &self.anchor else {
            return heard;
        };
        if self.is_idle() {
            return heard;
        }
        let Some(start) = self.items.iter().position(|i| i.item_id == anchor.item_id) else {
            return heard;
        };
        // Walk forward from the anchor through the items in play order.
        let mut budget = clock_ms.saturating_sub(anchor.clock_ms);
        let mut position = anchor.position_ms;
        for (ix, item) in self.items.iter().enumerate().skip(start) {
            let sent = item.sent_ms();
            let reach = (position + budget).min(sent);
            heard[ix].1 = heard[ix].1.max(reach);
            budget = budget.saturating_sub(sent.saturating_sub(position));
            position = 0;
            if budget == 0 {
                break;
            }
        }
        heard
    }

    /// The callee started talking at audio clock `clock_ms`. If agent audio is
    /// still buffered at Twilio, returns the truncations to send (and the
    /// caller sends Twilio `clear`); the pending marks become "flushed" so
    /// their echoes are ignored. `None` when nothing is playing.
    pub fn interrupt(&mut self, clock_ms: u64) -> Option<Interruption> {
        if self.is_idle() {
            return None;
        }
        let heard = self.heard_ms(clock_ms);
        let truncates = self
            .items
            .iter()
            .zip(heard)
            .filter(|(item, (_, heard))| *heard < item.sent_ms() || !item.audio_done)
            .map(|(item, (item_id, audio_end_ms))| Cut {
                item_id,
                audio_end_ms,
                sent_ms: item.sent_ms(),
            })
            .collect();
        self.flushed.extend(self.pending.drain(..).map(|m| m.name));
        self.tail = None;
        self.items.clear();
        self.anchor = None;
        Some(Interruption { truncates })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS100: u64 = 100 * BYTES_PER_MS;

    #[test]
    fn interruption_between_marks_extrapolates_on_the_audio_clock() {
        let mut p = Playback::default();
        let m1 = p.audio_sent("item_A", MS100, 1000);
        let m2 = p.audio_sent("item_A", MS100, 1000);
        let _m3 = p.audio_sent("item_A", MS100, 1000);
        assert_eq!(m1, "item_A:100:m1");
        assert_eq!(
            p.mark_echoed(&m1, 1100),
            Echo::Played {
                item_id: "item_A".into(),
                played_ms: 100
            }
        );
        // 50 ms after the echo the callee talks: 150 ms were heard.
        let cut = p.interrupt(1150).unwrap();
        assert_eq!(
            cut.truncates
                .iter()
                .map(|c| (c.item_id.as_str(), c.audio_end_ms))
                .collect::<Vec<_>>(),
            vec![("item_A", 150)]
        );
        assert_eq!(p.mark_echoed(&m2, 1150), Echo::Flushed);
        assert!(p.is_idle());
        assert_eq!(p.interrupt(1200), None);
    }

    #[test]
    fn before_any_echo_playback_counts_from_when_the_buffer_was_empty() {
        let mut p = Playback::default();
        p.audio_sent("item_A", 5 * MS100, 2000);
        let cut = p.interrupt(2240).unwrap();
        assert_eq!(
            cut.truncates
                .iter()
                .map(|c| (c.item_id.as_str(), c.audio_end_ms))
                .collect::<Vec<_>>(),
            vec![("item_A", 240)]
        );
    }

    #[test]
    fn never_truncates_beyond_what_was_sent() {
        let mut p = Playback::default();
        p.audio_sent("item_A", 3 * MS100, 0);
        let cut = p.interrupt(10_000).unwrap();
        assert_eq!(
            cut.truncates
                .iter()
                .map(|c| (c.item_id.as_str(), c.audio_end_ms))
                .collect::<Vec<_>>(),
            vec![("item_A", 300)]
        );
    }

    #[test]
    fn overflow_runs_into_the_next_item_and_finished_items_are_forgotten() {
        let mut p = Playback::default();
        p.audio_sent("item_A", 2 * MS100, 0);
        let a_end = p.audio_sent("item_A", 0, 0);
        p.audio_done("item_A");
        p.audio_sent("item_B", 2 * MS100, 0);
        assert!(matches!(p.mark_echoed(&a_end, 200), Echo::Played { .. }));
        let cut = p.interrupt(250).unwrap();
        assert_eq!(
            cut.truncates
                .iter()
                .map(|c| (c.item_id.as_str(), c.audio_end_ms))
                .collect::<Vec<_>>(),
            vec![("item_B", 50)]
        );
    }

    #[test]
    fn unknown_marks_are_reported() {
        let mut p = Playback::default();
        assert_eq!(p.mark_echoed("nope", 0), Echo::Unknown);
    }

    #[test]
    fn idle_once_every_mark_returned() {
        let mut p = Playback::default();
        let m = p.audio_sent("item_A", MS100, 0);
        assert!(!p.is_idle());
        p.audio_done("item_A");
        p.mark_echoed(&m, 100);
        assert!(p.is_idle());
        assert_eq!(p.interrupt(150), None);
    }

    const MS20: u64 = 20 * BYTES_PER_MS;

    #[test]
    fn sparse_marks_cover_every_n_ms_and_the_end_of_the_item() {
        let mut p = Playback::default();
        let names: Vec<Option<String>> = (0..7)
            .map(|_| p.audio_sent_every("item_A", MS20, 1000, 100))
            .collect();
        // One mark per 100 ms: after the fifth 20 ms chunk only.
        assert_eq!(names.iter().filter(|n| n.is_some()).count(), 1);
        assert_eq!(names[4].as_deref(), Some("item_A:100:m1"));
        assert!(!p.is_idle(), "40 ms went without a mark");
        let end = p.mark_tail().unwrap();
        assert_eq!(end, "item_A:140:m2");
        assert_eq!(p.mark_tail(), None);
        p.audio_done("item_A");
        assert!(matches!(
            p.mark_echoed(&end, 1140),
            Echo::Played { played_ms: 140, .. }
        ));
        assert!(p.is_idle());
    }

    #[test]
    fn between_sparse_marks_a_barge_in_is_placed_on_the_clock() {
        let mut p = Playback::default();
        let mut first = None;
        for _ in 0..20 {
            if let Some(n) = p.audio_sent_every("item_A", MS20, 5000, 200) {
                first.get_or_insert(n);
            }
        }
        let first = first.unwrap();
        assert_eq!(first, "item_A:200:m1");
        assert!(matches!(p.mark_echoed(&first, 5200), Echo::Played { .. }));
        // 130 ms after that echo (no mark in between): 330 ms heard.
        let cut = p.interrupt(5330).unwrap();
        assert_eq!(cut.truncates[0].audio_end_ms, 330);
        assert!(p.is_idle());
    }

    #[test]
    fn a_later_items_mark_means_the_earlier_item_played_to_its_end() {
        let mut p = Playback::default();
        assert_eq!(p.audio_sent_every("item_A", 3 * MS20, 0, 100), None);
        p.audio_done("item_A");
        let m = p.audio_sent_every("item_B", 2 * MS20, 0, 100).unwrap();
        assert_eq!(m, "item_B:40:m1");
        assert!(p.is_playing("item_A"));
        p.mark_echoed(&m, 100);
        assert!(!p.is_playing("item_A"), "item_A played and is forgotten");
        assert!(p.is_playing("item_B"));
    }

    #[test]
    fn audio_after_the_buffer_ran_dry_starts_playing_when_sent() {
        let mut p = Playback::default();
        assert_eq!(p.audio_sent_every("item_A", 2 * MS20, 1000, 100), None);
        // By 2000 the 40 ms have long played; new audio starts then.
        assert_eq!(p.audio_sent_every("item_A", 2 * MS20, 2000, 100), None);
        let cut = p.interrupt(2030).unwrap();
        assert_eq!(cut.truncates[0].audio_end_ms, 40 + 30);
    }
}
