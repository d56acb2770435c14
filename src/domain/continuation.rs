//! A Media Stream that continues a call: after Twilio pressed keys for the
//! agent (a call update with `<Play digits>` and a new `<Connect><Stream>`),
//! the conversation goes on over a second stream, which may reach another
//! instance. The new stream's `<Parameter>`s say so, next to the first
//! stream's own (the reservation and the call token).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};

use super::reservation::{param, ParameterError};

/// What marks a stream as the continuation of a call already under way.
///
/// The first stream of a call carries none of these parameters. A stream that
/// carries them tells the instance receiving it which stream of the call it
/// is (so an instance that holds the call's model session knows the stream is
/// its own, and a stale or repeated stream is told apart), and where the
/// call's clock stood: Twilio counts each stream's `media.timestamp` from that
/// stream's start (docs/protocol/twilio.md 5.3), so the call's clock is not
/// in the new stream's media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamContinuation {
    /// Which stream of the call this is: 2 for the stream after the first key
    /// press, 3 after the second, and so on.
    pub stream_number: u32,
    /// The call's clock when the call was updated, in milliseconds of call
    /// audio since the first stream started.
    pub call_clock_ms: u64,
    /// When the call was updated (the sender's wall clock), so that an
    /// instance that did not send the update can count the gap.
    pub updated_at: DateTime<Utc>,
}

impl StreamContinuation {
    /// The first stream's number; a continuation is always later.
    pub const FIRST_STREAM: u32 = 1;

    /// The continuation after a stream numbered `current` (1 for a stream that
    /// carried no continuation), sent at `updated_at` when the call's clock
    /// read `call_clock_ms`.
    pub fn after(current: u32, call_clock_ms: u64, updated_at: DateTime<Utc>) -> Self {
        StreamContinuation {
            stream_number: current.max(Self::FIRST_STREAM).saturating_add(1),
            call_clock_ms,
            updated_at,
        }
    }

    /// The call's clock at `now`: the clock at the update plus the time since
    /// (never less than the clock at the update, whatever the two machines'
    /// clocks say). Use it on an instance that did not send the update; the
    /// sender knows the gap from its own monotonic clock.
    pub fn call_clock_at(&self, now: DateTime<Utc>) -> u64 {
        let gap = (now - self.updated_at).num_milliseconds().max(0);
        self.call_clock_ms
            .saturating_add(u64::try_from(gap).unwrap_or(0))
    }

    /// These fields as `<Parameter>` name/value pairs.
    pub fn to_parameters(&self) -> Vec<(String, String)> {
        vec![
            (
                param::STREAM_NUMBER.to_string(),
                self.stream_number.to_string(),
            ),
            (
                param::CALL_CLOCK_MS.to_string(),
                self.call_clock_ms.to_string(),
            ),
            (
                param::UPDATED_AT.to_string(),
                self.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
        ]
    }

    /// The `<Parameter>`s of the next stream: every parameter the current
    /// stream received (the reservation, the call token, and whatever else
    /// the first stream carried), without its own continuation, then this
    /// continuation. Sorted by name, so the same call gives the same TwiML.
    pub fn next_stream_parameters<'a>(
        &self,
        received: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Vec<(String, String)> {
        let mut parameters: Vec<(String, String)> = received
            .into_iter()
            .filter(|(name, _)| !param::CONTINUATION.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        parameters.sort();
        parameters.extend(self.to_parameters());
        parameters
    }

    /// Read the continuation from `start.customParameters`: `Ok(None)` for a
    /// call's first stream (no continuation parameter at all); an error when
    /// some are present but not all, or one cannot be read, because the
    /// stream then cannot be placed in its call.
    pub fn from_parameters(
        params: &HashMap<String, String>,
    ) -> Result<Option<Self>, ParameterError> {
        if !param::CONTINUATION
            .iter()
            .any(|name| params.contains_key(*name))
        {
            return Ok(None);
        }
        let required = |name: &'static str| {
            params
                .get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or(ParameterError {
                    name,
                    problem: "missing (the stream carries the other continuation parameters)"
                        .into(),
                })
        };
        let bad = |name: &'static str| move |problem: String| ParameterError { name, problem };
        let stream_number = required(param::STREAM_NUMBER)?
            .parse::<u32>()
            .map_err(|e| e.to_string())
            .and_then(|n| {
                if n > Self::FIRST_STREAM {
                    Ok(n)
                } else {
                    Err(format!("{n} is not a later stream (2 or more)"))
                }
            })
            .map_err(bad(param::STREAM_NUMBER))?;
        let call_clock_ms = required(param::CALL_CLOCK_MS)?
            .parse::<u64>()
            .map_err(|e| bad(param::CALL_CLOCK_MS)(e.to_string()))?;
        let updated_at = DateTime::parse_from_rfc3339(required(param::UPDATED_AT)?)
            .map_err(|e| bad(param::UPDATED_AT)(e.to_string()))?
            .with_timezone(&Utc);
        Ok(Some(StreamContinuation {
            stream_number,
            call_clock_ms,
            updated_at,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_795_000_000_000 + ms)
            .single()
            .expect("valid instant")
    }

    fn map(pairs: &[(String, String)]) -> HashMap<String, String> {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn a_first_stream_has_no_continuation() {
        let first = HashMap::from([
            ("call_token".to_string(), "k7Qx2mPz9LwR4tVb".to_string()),
            ("party_size".to_string(), "4".to_string()),
        ]);
        assert_eq!(StreamContinuation::from_parameters(&first), Ok(None));
    }

    #[test]
    fn parameters_round_trip() {
        let c = StreamContinuation::after(1, 48_260, at(123));
        assert_eq!(c.stream_number, 2);
        let pairs = c.to_parameters();
        assert_eq!(
            pairs,
            vec![
                ("stream_number".to_string(), "2".to_string()),
                ("call_clock_ms".to_string(), "48260".to_string()),
                (
                    "updated_at".to_string(),
                    "2026-11-18T11:06:40.123Z".to_string()
                ),
            ]
        );
        assert_eq!(
            StreamContinuation::from_parameters(&map(&pairs)),
            Ok(Some(c.clone()))
        );
        // A continuation of a continuation counts on.
        assert_eq!(StreamContinuation::after(2, 0, at(0)).stream_number, 3);
        assert_eq!(StreamContinuation::after(0, 0, at(0)).stream_number, 2);
    }

    #[test]
    fn the_next_stream_keeps_every_parameter_and_replaces_the_continuation() {
        let received = HashMap::from([
            ("restaurant_name".to_string(), "Bob & Sue's".to_string()),
            ("call_token".to_string(), "k7Qx2mPz9LwR4tVb".to_string()),
            ("language".to_string(), "fr-FR".to_string()),
            ("stream_number".to_string(), "2".to_string()),
            ("call_clock_ms".to_string(), "1000".to_string()),
            (
                "updated_at".to_string(),
                "2026-11-18T07:46:40.000Z".to_string(),
            ),
        ]);
        let next = StreamContinuation::after(2, 9_000, at(500));
        let params = next.next_stream_parameters(&received);
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "call_token",
                "language",
                "restaurant_name",
                "stream_number",
                "call_clock_ms",
                "updated_at"
            ]
        );
        let read = StreamContinuation::from_parameters(&map(&params))
            .expect("readable")
            .expect("a continuation");
        assert_eq!(read, next);
        assert_eq!(read.stream_number, 3);
    }

    #[test]
    fn the_clock_counts_the_gap_and_never_goes_back() {
        let c = StreamContinuation::after(1, 10_000, at(0));
        assert_eq!(c.call_clock_at(at(0)), 10_000);
        assert_eq!(c.call_clock_at(at(1_250)), 11_250);
        // A receiving machine whose clock is behind the sender's.
        assert_eq!(c.call_clock_at(at(-300)), 10_000);
    }

    #[test]
    fn partial_or_bad_continuations_are_refused_by_name() {
        let good = StreamContinuation::after(1, 5, at(0)).to_parameters();
        for (drop, expected) in [
            ("stream_number", "stream_number"),
            ("call_clock_ms", "call_clock_ms"),
            ("updated_at", "updated_at"),
        ] {
            let partial: HashMap<String, String> =
                good.iter().filter(|(n, _)| n != drop).cloned().collect();
            let err = StreamContinuation::from_parameters(&partial).unwrap_err();
            assert_eq!(err.name, expected);
        }
        for (name, value) in [
            ("stream_number", "1"),
            ("stream_number", "two"),
            ("call_clock_ms", "-5"),
            ("updated_at", "yesterday"),
            ("updated_at", " "),
        ] {
            let mut params = map(&good);
            params.insert(name.to_string(), value.to_string());
            let err = StreamContinuation::from_parameters(&params).unwrap_err();
            assert_eq!(err.name, name, "{name}={value:?}");
        }
    }
}
