//! Several simulated restaurants in one simulated world, for `demo --web`.
//!
//! A rig normally plays one scenario for every call. On the web page a person
//! places call after call and picks how the restaurant behaves, so the
//! switchboard gives each scenario its own phone number and writes each
//! call's script for the reservation that call carries (the name, party and
//! day the person typed). Both simulators consult it:
//!
//! * the telephone network, when a call is answered ([`Switchboard::connect`]):
//!   the number says which restaurant (and which [`Line`]), the stream's
//!   `<Parameter>`s say what was asked;
//! * the Realtime stand-in, when the product briefs a new model session
//!   ([`Switchboard::model_joins`]): the instructions name the restaurant and
//!   the person, which finds the call the session belongs to, so calls placed
//!   at the same time each get their own script.

use std::sync::Mutex;

use chrono::NaiveDate;

use super::rig::ScenarioKind;
use super::scenario::{Booking, Scenario};
use super::telephone::Line;

/// One simulated restaurant: a number and how it behaves.
#[derive(Debug, Clone)]
pub struct SimRestaurant {
    /// Its E.164 number.
    pub number: String,
    /// How the line behaves (answers, busy, rings out, answering machine).
    pub line: Line,
    /// The conversation when it answers.
    pub scenario: ScenarioKind,
    /// What a person choosing it should expect, in a few words.
    pub label: &'static str,
}

/// A call the telephone network connected, as the model stand-in needs it.
struct Connected {
    call_sid: String,
    restaurant: String,
    customer: String,
    scenario: Scenario,
    model_sessions: u32,
    /// Script position (agent response, host line) a reconnecting model session resumes at.
    resume: (usize, usize),
}

/// A model session's place in a call: its script and where to start.
#[derive(Debug, Clone)]
pub struct ModelSeat {
    /// The call it belongs to.
    pub call_sid: String,
    /// That call's script.
    pub scenario: Scenario,
    /// (agent response, host line) to start at: zero for a new call, where
    /// the dropped session stopped for a reconnection.
    pub resume: (usize, usize),
}

/// The restaurants of a simulated world and the calls in progress.
pub struct Switchboard {
    restaurants: Vec<SimRestaurant>,
    fallback: ScenarioKind,
    fallback_booking: Booking,
    calls: Mutex<Vec<Connected>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Switchboard {
    /// The demo's restaurants, one per scenario plus a busy line and one that
    /// rings out, numbered from `first_number` (E.164, last digits counted up),
    /// and the French restaurant at its Paris number.
    /// Numbers nobody listed answer with `fallback`; a reservation whose
    /// parameters cannot be read is played as `booking`.
    pub fn demo(first_number: &str, fallback: ScenarioKind, booking: Booking) -> Switchboard {
        let plan: [(Line, ScenarioKind, &'static str); 7] = [
            (
                Line::Answer,
                ScenarioKind::Booked,
                "A table is free: booked",
            ),
            (
                Line::Answer,
                ScenarioKind::Alternative,
                "7 PM is full, 7:30 PM is offered",
            ),
            (
                Line::Answer,
                ScenarioKind::BargeIn,
                "The host talks over the agent",
            ),
            (
                Line::Answer,
                ScenarioKind::Menu,
                "A phone menu: press 2 for reservations",
            ),
            (
                Line::Voicemail,
                ScenarioKind::Voicemail,
                "An answering machine",
            ),
            (Line::Busy, ScenarioKind::Booked, "The line is busy"),
            (Line::NoAnswer, ScenarioKind::Booked, "Nobody answers"),
        ];
        let mut restaurants: Vec<SimRestaurant> = plan
            .into_iter()
            .enumerate()
            .map(|(i, (line, scenario, label))| SimRestaurant {
                number: nth_number(first_number, i as u64),
                line,
                scenario,
                label,
            })
            .collect();
        // A Paris number: the call is held in French, the number's language.
        restaurants.push(SimRestaurant {
            number: super::rig::FRENCH_RESTAURANT_NUMBER.to_string(),
            line: Line::Answer,
            scenario: ScenarioKind::French,
            label: "In Paris: the host speaks French",
        });
        Switchboard {
            restaurants,
            fallback,
            fallback_booking: booking,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The restaurants, in the order a person should see them.
    pub fn restaurants(&self) -> &[SimRestaurant] {
        &self.restaurants
    }

    /// How `number` behaves, if it is one of ours.
    pub fn line(&self, number: &str) -> Option<Line> {
        self.find(number).map(|r| r.line.clone())
    }

    fn find(&self, number: &str) -> Option<&SimRestaurant> {
        self.restaurants.iter().find(|r| r.number == number)
    }

    /// The telephone network answered `call_sid` at `to`: write the call's
    /// script from its stream parameters and keep it for the model stand-in.
    pub fn connect(&self, call_sid: &str, to: &str, parameters: &[(String, String)]) -> Scenario {
        let kind = self.find(to).map(|r| r.scenario).unwrap_or(self.fallback);
        let booking = booking_from(parameters, &self.fallback_booking);
        let scenario = kind.script(&booking);
        lock(&self.calls).push(Connected {
            call_sid: call_sid.to_string(),
            restaurant: booking.restaurant.clone(),
            customer: booking.name.clone(),
            scenario: scenario.clone(),
            model_sessions: 0,
            resume: (0, 0),
        });
        scenario
    }

    /// The call is over: forget it.
    pub fn disconnect(&self, call_sid: &str) {
        lock(&self.calls).retain(|c| c.call_sid != call_sid);
    }

    /// A model session was briefed with `instructions`: the call it belongs
    /// to. A call no session has joined yet is preferred (one whose
    /// restaurant and person the instructions name, else the one waiting
    /// longest); a second session for the same call (the product reconnected)
    /// resumes where the first stopped. `None` if no call is connected.
    pub fn model_joins(&self, instructions: &str) -> Option<ModelSeat> {
        let mut calls = lock(&self.calls);
        let names = |c: &Connected| {
            instructions.contains(&c.restaurant) && instructions.contains(&c.customer)
        };
        let pick = calls
            .iter()
            .position(|c| c.model_sessions == 0 && names(c))
            .or_else(|| calls.iter().position(|c| c.model_sessions == 0))
            .or_else(|| calls.iter().rposition(names))?;
        let call = &mut calls[pick];
        call.model_sessions += 1;
        Some(ModelSeat {
            call_sid: call.call_sid.clone(),
            scenario: call.scenario.clone(),
            resume: call.resume,
        })
    }

    /// A model session of `call_sid` closed at this script position.
    pub fn model_leaves(&self, call_sid: &str, resume: (usize, usize)) {
        if let Some(c) = lock(&self.calls)
            .iter_mut()
            .find(|c| c.call_sid == call_sid)
        {
            c.resume = resume;
        }
    }
}

/// `+12125550123` counted up by `n` in its last digits (`+12125550124`, …).
fn nth_number(first: &str, n: u64) -> String {
    let digits = first.trim_start_matches('+');
    match digits.parse::<u64>() {
        Ok(v) => format!("+{}", v + n),
        Err(_) => first.to_string(),
    }
}

/// The reservation a call carries, read from its stream parameters with the
/// simulator's own code (names as in Twilio's `<Parameter>`s); a missing or
/// unreadable field keeps the fallback's value.
fn booking_from(parameters: &[(String, String)], fallback: &Booking) -> Booking {
    let get = |name: &str| {
        parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut b = fallback.clone();
    if let Some(r) = get("restaurant_name") {
        b.restaurant = r;
    }
    if let Some(n) = get("customer_name") {
        b.name = n;
    }
    if let Some(p) = get("party_size").and_then(|p| p.parse().ok()) {
        b.party_size = p;
    }
    if let Some(t) = get("time") {
        b.time = t;
    }
    if let Some(d) = get("date").and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()) {
        b.date = d.format("%Y-%m-%d").to_string();
        b.spoken_date = d.format("%A %-d %B").to_string();
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(restaurant: &str, name: &str) -> Vec<(String, String)> {
        [
            ("restaurant_name", restaurant),
            ("customer_name", name),
            ("party_size", "6"),
            ("date", "2026-12-03"),
            ("time", "19:00"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn board() -> Switchboard {
        Switchboard::demo("+12125550123", ScenarioKind::Booked, Booking::demo())
    }

    #[test]
    fn each_number_plays_its_scenario_for_the_reservation_it_carries() {
        let sb = board();
        assert_eq!(sb.restaurants()[1].number, "+12125550124");
        assert!(matches!(sb.line("+12125550127"), Some(Line::Voicemail)));
        assert!(matches!(sb.line("+12125550128"), Some(Line::Busy)));
        assert!(sb.line("+15550000000").is_none());
        let s = sb.connect("CA1", "+12125550124", &params("Le Jardin", "Sam Lee"));
        assert_eq!(s.name, "alternative");
        let intro = s.agent[0].say.clone().unwrap_or_default();
        assert!(intro.contains("Sam Lee") && intro.contains("6"), "{intro}");
        assert!(intro.contains("Thursday 3 December"), "{intro}");
        let unknown = sb.connect("CA2", "+15550000000", &[]);
        assert_eq!(unknown.name, "booked");
    }

    #[test]
    fn model_sessions_find_their_call_and_a_reconnection_resumes() {
        let sb = board();
        sb.connect("CA1", "+12125550124", &params("Le Jardin", "Sam Lee"));
        sb.connect("CA2", "+12125550126", &params("Chez Demo", "Alex Doe"));
        let brief = |r: &str, n: &str| {
            format!("calling on behalf of {n}. You are calling the restaurant \"{r}\"")
        };
        let second = sb.model_joins(&brief("Chez Demo", "Alex Doe")).unwrap();
        assert_eq!(
            (second.call_sid.as_str(), second.scenario.name),
            ("CA2", "menu")
        );
        let first = sb.model_joins(&brief("Le Jardin", "Sam Lee")).unwrap();
        assert_eq!(first.call_sid, "CA1");
        assert_eq!(first.resume, (0, 0));
        sb.model_leaves("CA1", (2, 1));
        let again = sb.model_joins(&brief("Le Jardin", "Sam Lee")).unwrap();
        assert_eq!((again.call_sid.as_str(), again.resume), ("CA1", (2, 1)));
        sb.disconnect("CA1");
        sb.disconnect("CA2");
        assert!(sb.model_joins("anything").is_none());
    }
}
