//! The bounded queue of messages on their way to the broker. Publishers never wait: a message
//! is queued and the client takes it when connected. A message stays here until the broker has
//! acknowledged it (QoS 1 and 2), so messages in flight when the connection drops are sent again
//! after reconnection. At most [`CAPACITY`] wait; past that the oldest are dropped and counted.

use std::collections::{BTreeMap, VecDeque};

/// Messages kept while the broker is away.
pub const CAPACITY: usize = 1000;
/// Messages handed to the client and not yet acknowledged, at most.
pub const WINDOW: usize = 64;

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub qos: u8,
}

#[derive(Default)]
pub struct Outbox {
    waiting: VecDeque<(u64, Out)>,
    /// Handed to the client, in order, not yet given a packet id.
    handed: VecDeque<(u64, Out)>,
    /// Sent, by packet id, waiting for the broker's acknowledgement.
    inflight: BTreeMap<u16, (u64, Out)>,
    seq: u64,
    pub published: u64,
    pub dropped: u64,
}

impl Outbox {
    /// Queues a message, dropping the oldest waiting one when full.
    pub fn push(&mut self, out: Out) {
        self.seq += 1;
        self.waiting.push_back((self.seq, out));
        self.trim();
    }

    /// Queues a message to go before everything waiting (the availability on connection).
    pub fn push_front(&mut self, out: Out) {
        // Sequence numbers only order what is re-queued after a drop; 0 sorts first.
        self.waiting.push_front((0, out));
        self.trim();
    }

    fn trim(&mut self) {
        while self.len() > CAPACITY {
            if self.waiting.pop_front().is_none() {
                break;
            }
            self.dropped += 1;
        }
    }

    /// Not yet acknowledged: waiting, handed over and in flight.
    pub fn len(&self) -> usize {
        self.waiting.len() + self.handed.len() + self.inflight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next message to hand to the client, while the window has room.
    pub fn take(&mut self) -> Option<Out> {
        if self.handed.len() + self.inflight.len() >= WINDOW {
            return None;
        }
        let m = self.waiting.pop_front()?;
        let out = m.1.clone();
        self.handed.push_back(m);
        Some(out)
    }

    /// The client could not take it after all: it waits again, first in line.
    pub fn untake(&mut self) {
        if let Some(m) = self.handed.pop_back() {
            self.waiting.push_front(m);
        }
    }

    /// The client sent the oldest handed message with this packet id (0: QoS 0, done).
    pub fn sent(&mut self, pkid: u16) {
        if let Some(m) = self.handed.pop_front() {
            if pkid == 0 {
                self.published += 1;
            } else {
                self.inflight.insert(pkid, m);
            }
        }
    }

    /// The broker acknowledged this packet id.
    pub fn acked(&mut self, pkid: u16) {
        if self.inflight.remove(&pkid).is_some() {
            self.published += 1;
        }
    }

    /// The connection dropped: what was handed over or in flight waits again, in its order,
    /// before everything queued since.
    pub fn requeue(&mut self) {
        let mut back: Vec<(u64, Out)> = std::mem::take(&mut self.inflight).into_values().collect();
        back.extend(self.handed.drain(..));
        back.sort_by_key(|m| m.0);
        for m in back.into_iter().rev() {
            self.waiting.push_front(m);
        }
        self.trim();
    }

    /// Forgets everything (the broker or the topics changed).
    pub fn clear(&mut self) {
        self.waiting.clear();
        self.handed.clear();
        self.inflight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(i: usize) -> Out {
        Out {
            topic: format!("t/{i}"),
            payload: vec![],
            retain: false,
            qos: 1,
        }
    }

    #[test]
    fn the_oldest_are_dropped_and_counted_past_capacity() {
        let mut o = Outbox::default();
        for i in 0..CAPACITY + 5 {
            o.push(m(i));
        }
        assert_eq!(o.len(), CAPACITY);
        assert_eq!(o.dropped, 5);
        assert_eq!(o.take().unwrap().topic, "t/5");
    }

    #[test]
    fn unacknowledged_messages_are_sent_again_in_order_after_a_drop() {
        let mut o = Outbox::default();
        for i in 0..5 {
            o.push(m(i));
        }
        for _ in 0..3 {
            o.take().unwrap();
        }
        o.sent(7); // t/0
        o.sent(8); // t/1; t/2 handed, not sent
        o.acked(7);
        assert_eq!(o.published, 1);
        o.requeue();
        let order: Vec<String> = std::iter::from_fn(|| o.take().map(|m| m.topic)).collect();
        assert_eq!(order, ["t/1", "t/2", "t/3", "t/4"]);
        assert_eq!(o.len(), 4);
    }

    #[test]
    fn the_window_limits_what_is_in_flight() {
        let mut o = Outbox::default();
        for i in 0..WINDOW + 10 {
            o.push(m(i));
        }
        let n = std::iter::from_fn(|| o.take()).count();
        assert_eq!(n, WINDOW);
        o.sent(0);
        assert!(o.take().is_some(), "a QoS 0 message sent frees a slot");
        o.untake();
        assert_eq!(o.len(), WINDOW + 10 - 1);
    }
}
