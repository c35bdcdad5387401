//! The request log: every request to a source, in arrival order, with the headers a client
//! identifies itself by and the status it got.

use std::time::Instant;

/// One request a source received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The source id (the first path segment).
    pub source: String,
    /// The path after the source prefix, e.g. `/posts.json`.
    pub path: String,
    /// The query parameters, percent-decoded (`+` as space), in order.
    pub query: Vec<(String, String)>,
    /// The `User-Agent` header as sent, if there was one (and it was visible text).
    pub user_agent: Option<String>,
    /// The `Accept-Encoding` header as sent, if there was one (and it was visible text).
    pub accept_encoding: Option<String>,
    /// When the request arrived, before any latency or fault.
    pub at: Instant,
    /// The status answered; `None` while the request is open, or when it hung or was
    /// reset.
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        let found = self.query.iter().find(|(key, _)| key == name);
        found.map(|(_, value)| value.as_str())
    }
}

/// The log, with a sequence number per entry so a status can be filled in after the log
/// was cleared and refilled.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: Vec<(u64, RecordedRequest)>,
    next: u64,
}

impl RequestLog {
    /// Appends a request and returns the ticket to set its status with.
    pub fn push(&mut self, request: RecordedRequest) -> u64 {
        let ticket = self.next;
        self.next += 1;
        self.entries.push((ticket, request));
        ticket
    }

    /// Fills in the status of the request with this ticket, if it is still logged.
    pub fn set_status(&mut self, ticket: u64, status: u16) {
        let found = self.entries.iter_mut().rev().find(|(t, _)| *t == ticket);
        if let Some((_, request)) = found {
            request.status = Some(status);
        }
    }

    /// Every logged request, in arrival order.
    pub fn all(&self) -> Vec<RecordedRequest> {
        self.entries.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Forgets every request.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
