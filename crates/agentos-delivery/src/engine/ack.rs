//! What counts as an acknowledgement. A 2xx alone does not: a captive portal or a misrouted
//! proxy answers `200` with an HTML page, and treating that as "stored" would move the cursor
//! past events the collector never saw. An answer counts only when it parses as the protocol's
//! response and agrees with the request it answers; anything else is retried (see `post`).

use serde_json::Value;

use crate::wire::EventsResponse;

/// What one `/v1/events` request claimed, to check its answer against.
pub(crate) struct Expect<'a> {
    /// Events in the request.
    pub(crate) events: u64,
    /// The request's `covers` range.
    pub(crate) from: u64,
    /// The request's `covers` range.
    pub(crate) to: u64,
    /// `(seq, event_id)` of every event in the request.
    pub(crate) ids: &'a [(u64, &'a str)],
}

/// Reads a `/v1/events` answer and checks it against the request.
///
/// Consistent means: a JSON object with numeric `accepted`, `duplicates` and `watermark`;
/// `accepted + duplicates + rejected` equals the events sent (each is exactly one of those);
/// every rejection names an event of the request; no gap lies inside `covers` (the request
/// accounted for those seqs); and a watermark below `to` is explained by a gap starting right
/// above it, below `from` (the watermark may exceed `to`: the device's later history can
/// already be covered, e.g. after a rescan).
///
/// # Errors
/// Why the answer is not an acknowledgement, in words.
pub(crate) fn events_ack(bytes: &[u8], want: &Expect<'_>) -> Result<EventsResponse, String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the body is not JSON ({e})"))?;
    let Some(obj) = value.as_object() else {
        return Err("the body is not a JSON object".into());
    };
    for key in ["accepted", "duplicates", "watermark"] {
        if !obj.get(key).is_some_and(Value::is_u64) {
            return Err(format!("`{key}` is missing or not a count"));
        }
    }
    let resp: EventsResponse =
        serde_json::from_value(value).map_err(|e| format!("the body is malformed ({e})"))?;
    let counted = resp
        .accepted
        .saturating_add(resp.duplicates)
        .saturating_add(resp.rejected.len() as u64);
    if counted != want.events {
        return Err(format!(
            "accepted {} + duplicates {} + rejected {} = {counted}, but the request carried {} events",
            resp.accepted,
            resp.duplicates,
            resp.rejected.len(),
            want.events
        ));
    }
    for r in &resp.rejected {
        let known = want.ids.iter().any(|(seq, id)| {
            r.seq.is_none_or(|s| s == *seq) && r.event_id.as_deref().is_none_or(|e| e == *id)
        });
        if !known && (r.seq.is_some() || r.event_id.is_some()) {
            return Err(format!(
                "it rejects an event the request did not carry (seq {:?}, event_id {:?})",
                r.seq, r.event_id
            ));
        }
    }
    if let Some([a, b]) = resp
        .gaps
        .iter()
        .find(|[a, b]| a > b || (*a <= want.to && *b >= want.from))
    {
        return Err(format!(
            "gap [{a}, {b}] overlaps the seqs {}..={} the request accounted for",
            want.from, want.to
        ));
    }
    if resp.watermark < want.to {
        let next = resp.watermark + 1;
        let explained = next < want.from && resp.gaps.first().is_some_and(|[a, _]| *a == next);
        if !explained {
            return Err(format!(
                "watermark {} is below the request's last seq {} with no gap at {next}",
                resp.watermark, want.to
            ));
        }
    }
    Ok(resp)
}

/// Reads a `/v1/metrics` answer: `{"stored": true}` and nothing less.
///
/// # Errors
/// Why the answer is not an acknowledgement.
pub(crate) fn metrics_ack(bytes: &[u8]) -> Result<(), String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the body is not JSON ({e})"))?;
    if value.get("stored") == Some(&Value::Bool(true)) {
        Ok(())
    } else {
        Err("expected {\"stored\":true}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [(u64, &str); 3] = [(4, "a"), (5, "b"), (7, "c")];

    fn want() -> Expect<'static> {
        Expect {
            events: 3,
            from: 3,
            to: 7,
            ids: &IDS,
        }
    }

    fn check(body: &str) -> Result<EventsResponse, String> {
        events_ack(body.as_bytes(), &want())
    }

    #[test]
    fn a_consistent_answer_is_an_acknowledgement() {
        let r = check(r#"{"accepted":2,"duplicates":0,"rejected":[{"seq":5,"event_id":"b","code":"x","reason":"y"}],"watermark":7,"gaps":[]}"#)
            .expect("consistent");
        assert_eq!((r.accepted, r.watermark), (2, 7));
        // Earlier loss explains a watermark below the batch; a later history above it is fine.
        check(r#"{"accepted":3,"duplicates":0,"watermark":1,"gaps":[[2,2]]}"#).expect("gap below");
        check(r#"{"accepted":0,"duplicates":3,"watermark":900}"#).expect("rescan replay");
    }

    #[test]
    fn html_empty_and_partial_answers_are_refused() {
        for (body, why) in [
            ("<html><body>Welcome to the proxy</body></html>", "not JSON"),
            ("", "not JSON"),
            ("[]", "not a JSON object"),
            ("{}", "`accepted` is missing"),
            (r#"{"accepted":3,"duplicates":0}"#, "`watermark` is missing"),
            (
                r#"{"accepted":-1,"duplicates":0,"watermark":7}"#,
                "`accepted`",
            ),
        ] {
            let e = check(body).expect_err(body);
            assert!(e.contains(why), "{body}: {e}");
        }
    }

    #[test]
    fn answers_that_disagree_with_the_request_are_refused() {
        for (body, why) in [
            (
                r#"{"accepted":0,"duplicates":0,"watermark":7}"#,
                "carried 3 events",
            ),
            (
                r#"{"accepted":5,"duplicates":0,"watermark":7}"#,
                "carried 3 events",
            ),
            (
                r#"{"accepted":2,"duplicates":0,"rejected":[{"seq":99,"code":"x","reason":"y"}],"watermark":7}"#,
                "did not carry",
            ),
            (
                r#"{"accepted":3,"duplicates":0,"watermark":7,"gaps":[[5,6]]}"#,
                "overlaps",
            ),
            (
                r#"{"accepted":3,"duplicates":0,"watermark":0}"#,
                "no gap at 1",
            ),
            (
                r#"{"accepted":3,"duplicates":0,"watermark":4,"gaps":[]}"#,
                "below the request's last seq",
            ),
        ] {
            let e = check(body).expect_err(body);
            assert!(e.contains(why), "{body}: {e}");
        }
    }

    #[test]
    fn a_metrics_answer_must_say_stored() {
        assert!(metrics_ack(br#"{"stored":true}"#).is_ok());
        assert!(metrics_ack(b"<html>OK</html>").is_err());
        assert!(metrics_ack(b"{}").is_err());
        assert!(metrics_ack(br#"{"stored":false}"#).is_err());
    }
}
