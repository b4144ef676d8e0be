//! Range planning: the samples a batch needs, as few requests as the
//! limits allow.

use std::ops::Range;

/// One request: `range` of one object, covering `members` (positions in
/// the list of requests given to [`plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Bytes of the object to read.
    pub range: Range<u64>,
    /// Which requests it serves (all of the same object).
    pub members: Vec<usize>,
}

/// Plans `requests` (`(object, byte range)`): per object, in address order,
/// ranges that touch, overlap or lie at most `max_gap` bytes apart are read
/// in one run, as long as a run stays at most `max_run` bytes long (a
/// single range longer than that is a run of its own). Runs come out in
/// object order, then address order; every request is in exactly one run.
pub fn plan(requests: &[(&str, Range<u64>)], max_gap: u64, max_run: u64) -> Vec<Run> {
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by(|&a, &b| {
        let (oa, ra) = &requests[a];
        let (ob, rb) = &requests[b];
        oa.cmp(ob)
            .then(ra.start.cmp(&rb.start))
            .then(ra.end.cmp(&rb.end))
    });
    let mut runs: Vec<Run> = Vec::new();
    let mut current: Option<(&str, Run)> = None;
    for i in order {
        let (object, range) = (&requests[i].0, &requests[i].1);
        if let Some((o, run)) = &mut current {
            let end = run.range.end.max(range.end);
            if *o == *object
                && range.start <= run.range.end.saturating_add(max_gap)
                && end - run.range.start <= max_run
            {
                run.range.end = end;
                run.members.push(i);
                continue;
            }
            runs.push(current.take().expect("some").1);
        }
        current = Some((
            object,
            Run {
                range: range.clone(),
                members: vec![i],
            },
        ));
    }
    runs.extend(current.map(|(_, r)| r));
    runs
}
