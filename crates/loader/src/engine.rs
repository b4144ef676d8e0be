//! The ordered parallel enqueuer: one persistent worker pool per loader,
//! a bounded window of batches ahead of the consumer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::{Error, Sequence};

/// Delivery order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Strictly in batch-index order.
    #[default]
    Ordered,
    /// As batches complete (still every batch exactly once).
    Completion,
}

/// How a [`Loader`] runs its sequence.
#[derive(Debug, Clone)]
pub struct LoaderOptions {
    /// Worker threads (1 to [`stokehold_core::max_threads`]).
    pub threads: usize,
    /// Most batches in flight or buffered at once: memory stays under
    /// `prefetch × batch bytes` plus a constant.
    pub prefetch: usize,
    /// Delivery order.
    pub order: Order,
    /// The epoch to start at.
    pub epoch: u64,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        let threads = stokehold_core::default_threads();
        LoaderOptions {
            threads,
            prefetch: 2 * threads,
            order: Order::Ordered,
            epoch: 0,
        }
    }
}

/// Where a loader is: restore it to resume the exact sequence of batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// The epoch in progress (or about to start).
    pub epoch: u64,
    /// The next batch the consumer will receive in that epoch.
    pub next_batch: usize,
    /// The seed of the order and augmentations.
    pub seed: u64,
    /// The sequence's fingerprint (its options and data).
    pub fingerprint: u64,
}

type Job = Box<dyn FnOnce() + Send>;

/// The worker threads: created once, fed jobs through one queue.
struct Pool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(workers: usize) -> Result<Pool, Error> {
        let (tx, rx) = channel::<Job>();
        // The queue's receiving end is shared: a worker holds the lock only
        // while taking one job, never while running it.
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(format!("stokehold-ld-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // the loader is gone
                    }
                })
                .map_err(|e| Error::InvalidArgument(format!("cannot start worker thread: {e}")))?;
            threads.push(handle);
        }
        Ok(Pool {
            jobs: Some(tx),
            threads,
        })
    }

    fn submit(&self, job: Job) -> Result<(), Error> {
        self.jobs
            .as_ref()
            .ok_or(Error::Closed)?
            .send(job)
            .map_err(|_| Error::Closed)
    }

    fn shutdown(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

type Outcome<B> = (usize, Result<B, Error>);

/// How long [`Run::next`] waits for the next batch.
#[derive(Clone, Copy)]
enum Wait<'a> {
    /// Not at all: only a batch already made is returned.
    No,
    /// Until it is made, or until the function says to stop (polled every
    /// [`POLL`]); stopping consumes nothing.
    Until(&'a dyn Fn() -> bool),
}

/// How often a waiting consumer checks whether it should stop waiting.
const POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Runs a [`Sequence`] on a persistent pool of workers. See the crate docs.
pub struct Loader<S: Sequence> {
    seq: Arc<S>,
    options: LoaderOptions,
    pool: Pool,
    epoch: u64,
    next_batch: usize,
}

impl<S: Sequence> std::fmt::Debug for Loader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("options", &self.options)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl<S: Sequence> Loader<S> {
    /// Starts the worker pool.
    pub fn new(seq: Arc<S>, options: LoaderOptions) -> Result<Self, Error> {
        let max = stokehold_core::max_threads();
        if options.threads == 0 || options.threads > max {
            return Err(Error::InvalidArgument(format!(
                "num_threads must be between 1 and {max} ({} per core), got {}",
                stokehold_core::MAX_THREADS_PER_CORE,
                options.threads
            )));
        }
        if options.prefetch == 0 || options.prefetch > 1024 {
            return Err(Error::InvalidArgument(format!(
                "prefetch must be between 1 and 1024 batches, got {}",
                options.prefetch
            )));
        }
        let pool = Pool::new(options.threads)?;
        Ok(Loader {
            epoch: options.epoch,
            seq,
            options,
            pool,
            next_batch: 0,
        })
    }

    /// The sequence it runs.
    pub fn sequence(&self) -> &Arc<S> {
        &self.seq
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// Whether an epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// The current position.
    pub fn state(&self) -> LoaderState {
        LoaderState {
            epoch: self.epoch,
            next_batch: self.next_batch,
            seed: self.seq.seed(),
            fingerprint: self.seq.fingerprint(),
        }
    }

    /// Resumes at `state`: the next batches are exactly those that would
    /// have followed it.
    pub fn restore(&mut self, state: LoaderState) -> Result<(), Error> {
        if state.fingerprint != self.seq.fingerprint() || state.seed != self.seq.seed() {
            return Err(Error::InvalidArgument(
                "the state was saved by a loader with other options or data (fingerprint differs)"
                    .into(),
            ));
        }
        let len = self.seq.len_of_epoch(state.epoch);
        if state.next_batch > len {
            return Err(Error::InvalidArgument(format!(
                "next_batch {} is past the {len} batches of epoch {}",
                state.next_batch, state.epoch
            )));
        }
        self.epoch = state.epoch;
        self.next_batch = state.next_batch;
        Ok(())
    }

    /// Iterates over the rest of the current epoch. When it has delivered
    /// the epoch's last batch, the epoch-end hook runs and the loader moves
    /// to the next epoch. Dropping it early stops the workers' remaining
    /// work for it and keeps the position for [`Loader::state`].
    pub fn epoch(&mut self) -> EpochIter<'_, S> {
        let start = self.next_batch;
        let run = Run::new(self.epoch, start, self.seq.len_of_epoch(self.epoch));
        EpochIter { loader: self, run }
    }

    /// An endless, thread-safe iterator over batches that cycles epochs
    /// (reshuffling each, running the epoch-end hook between them).
    pub fn generator(self) -> Generator<S> {
        Generator {
            inner: Mutex::new(GenState {
                loader: self,
                run: None,
                ahead: None,
            }),
        }
    }

    /// Stops the workers and joins them.
    pub fn close(mut self) {
        self.pool.shutdown();
    }

    /// Counts one batch delivered; at the epoch's last, ends the epoch and
    /// returns true.
    fn delivered(&mut self) -> bool {
        self.next_batch += 1;
        let ended = self.next_batch >= self.seq.len_of_epoch(self.epoch);
        if ended {
            self.finish_epoch();
        }
        ended
    }

    fn finish_epoch(&mut self) {
        self.seq.on_epoch_end(self.epoch);
        self.epoch += 1;
        self.next_batch = 0;
    }
}

/// One epoch's dispatch state.
struct Run<B> {
    epoch: u64,
    end: usize,
    next_dispatch: usize,
    in_flight: usize,
    ready: BTreeMap<usize, Result<B, Error>>,
    cancel: Arc<AtomicBool>,
    tx: Sender<Outcome<B>>,
    rx: Receiver<Outcome<B>>,
}

impl<B: Send + 'static> Run<B> {
    fn new(epoch: u64, start: usize, end: usize) -> Self {
        let (tx, rx) = channel();
        Run {
            epoch,
            end,
            next_dispatch: start,
            in_flight: 0,
            ready: BTreeMap::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            tx,
            rx,
        }
    }

    /// Dispatches batches while fewer than `prefetch` are in flight or
    /// buffered, then returns the next one to deliver: waiting for it when
    /// `wait`, else only if it is already done (`Err(Pending)` if not).
    fn next<S: Sequence<Batch = B>>(
        &mut self,
        seq: &Arc<S>,
        pool: &Pool,
        options: &LoaderOptions,
        next_deliver: usize,
        wait: Wait<'_>,
    ) -> Result<(usize, Result<B, Error>), Pending> {
        if next_deliver >= self.end && options.order == Order::Ordered {
            return Err(Pending::Finished);
        }
        if let Err(index) = self.dispatch(seq, pool, options.prefetch) {
            return Ok((index, Err(Error::Closed)));
        }
        self.receive(options, next_deliver, wait)
    }

    /// Batches dispatched and not yet delivered.
    fn held(&self) -> usize {
        self.in_flight + self.ready.len()
    }

    /// Dispatches batches while fewer than `budget` are in flight or
    /// buffered; `Err(index)` when the pool is closed.
    fn dispatch<S: Sequence<Batch = B>>(
        &mut self,
        seq: &Arc<S>,
        pool: &Pool,
        budget: usize,
    ) -> Result<(), usize> {
        while self.next_dispatch < self.end && self.held() < budget {
            let index = self.next_dispatch;
            let (seq, tx, cancel, epoch) = (
                Arc::clone(seq),
                self.tx.clone(),
                Arc::clone(&self.cancel),
                self.epoch,
            );
            let job: Job = Box::new(move || {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    seq.batch(epoch, index)
                }))
                .unwrap_or_else(|panic| {
                    let message = stokehold_core::panic_message(&*panic);
                    Err(Error::Panic {
                        epoch,
                        batch: index,
                        message,
                    })
                });
                let _ = tx.send((index, result));
            });
            if pool.submit(job).is_err() {
                return Err(index);
            }
            self.next_dispatch += 1;
            self.in_flight += 1;
        }
        Ok(())
    }

    /// The next batch to deliver (see [`Run::next`]).
    fn receive(
        &mut self,
        options: &LoaderOptions,
        next_deliver: usize,
        wait: Wait<'_>,
    ) -> Result<(usize, Result<B, Error>), Pending> {
        let receive = |rx: &Receiver<Outcome<B>>| match wait {
            Wait::No => rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => Pending::NotReady,
                TryRecvError::Disconnected => Pending::Finished,
            }),
            Wait::Until(stop) => loop {
                match rx.recv_timeout(POLL) {
                    Ok(outcome) => return Ok(outcome),
                    Err(RecvTimeoutError::Disconnected) => return Err(Pending::Finished),
                    Err(RecvTimeoutError::Timeout) if stop() => return Err(Pending::NotReady),
                    Err(RecvTimeoutError::Timeout) => {}
                }
            },
        };
        match options.order {
            Order::Ordered => loop {
                if let Some(result) = self.ready.remove(&next_deliver) {
                    return Ok((next_deliver, result));
                }
                let (i, result) = receive(&self.rx)?;
                self.in_flight -= 1;
                self.ready.insert(i, result);
            },
            Order::Completion => {
                if self.in_flight == 0 {
                    return Err(Pending::Finished);
                }
                let (i, result) = receive(&self.rx)?;
                self.in_flight -= 1;
                Ok((i, result))
            }
        }
    }
}

/// Why [`Run::next`] returned no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// The run has delivered all its batches (or its workers are gone).
    Finished,
    /// The next batch is still being made (only when not waiting).
    NotReady,
}

impl<B> Drop for Run<B> {
    fn drop(&mut self) {
        // Queued jobs of this run return at once; running ones finish their
        // batch and their result is dropped with the channel.
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The batches of one epoch, from a [`Loader`].
pub struct EpochIter<'a, S: Sequence> {
    loader: &'a mut Loader<S>,
    run: Run<S::Batch>,
}

impl<S: Sequence> Iterator for EpochIter<'_, S> {
    type Item = Result<S::Batch, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let loader = &mut *self.loader;
        if loader.next_batch >= self.run.end {
            return None;
        }
        let (_, result) = self
            .run
            .next(
                &loader.seq,
                &loader.pool,
                &loader.options,
                loader.next_batch,
                Wait::Until(&|| false),
            )
            .ok()?;
        if loader.delivered() {
            // Mark the run as finished so the `>= end` check above holds.
            self.run.end = 0;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.run.end.saturating_sub(self.loader.next_batch);
        (left, Some(left))
    }
}

// Fields drop in order: the runs first, which cancels their queued jobs,
// then the loader, whose pool joins its workers (declared first, it would
// wait for up to `prefetch` batches that nobody will take).
struct GenState<S: Sequence> {
    run: Option<Run<S::Batch>>,
    /// The next epoch's run, already reading ahead while the current one
    /// has nothing left to dispatch (only for a sequence whose epochs are
    /// independent, [`Sequence::independent_epochs`]).
    ahead: Option<Run<S::Batch>>,
    loader: Loader<S>,
}

impl<S: Sequence> GenState<S> {
    /// Tops up the read-ahead into the next epoch with what the current
    /// run leaves of the `prefetch` budget.
    fn read_ahead(&mut self) {
        let loader = &self.loader;
        if !loader.seq.independent_epochs() || loader.options.order != Order::Ordered {
            return;
        }
        let Some(run) = &self.run else { return };
        if run.next_dispatch < run.end || run.held() >= loader.options.prefetch {
            return;
        }
        let budget = loader.options.prefetch - run.held();
        let next = loader.epoch + 1;
        let ahead = self
            .ahead
            .get_or_insert_with(|| Run::new(next, 0, loader.seq.len_of_epoch(next)));
        // A closed pool shows at the next delivery.
        let _ = ahead.dispatch(&loader.seq, &loader.pool, budget);
    }

    /// The run that starts where the loader now is: the one read ahead,
    /// when it is for this epoch from its start.
    fn take_ahead(&mut self) -> Option<Run<S::Batch>> {
        let ahead = self.ahead.take()?;
        (ahead.epoch == self.loader.epoch && self.loader.next_batch == 0).then_some(ahead)
    }
}

/// An endless iterator over batches that cycles epochs; `next_batch` may be
/// called from several threads (one at a time gets each batch).
pub struct Generator<S: Sequence> {
    inner: Mutex<GenState<S>>,
}

impl<S: Sequence> Generator<S> {
    /// The next batch, starting the next epoch when one ends.
    pub fn next_batch(&self) -> Result<S::Batch, Error> {
        self.next_inner(Wait::Until(&|| false))
            .unwrap_or_else(|| Err(Error::Closed))
    }

    /// The next batch, waiting for it until `stop` returns true (checked
    /// every 10 ms): then `None`, and nothing is consumed: the batch is
    /// still being made and the next call gets it. For a caller that must
    /// react to Ctrl-C while a large batch is decoded.
    pub fn next_batch_until(&self, stop: &dyn Fn() -> bool) -> Option<Result<S::Batch, Error>> {
        self.next_inner(Wait::Until(stop))
    }

    /// The next batch if it is already made, without waiting: `None` when
    /// it is still being made (then [`Generator::next_batch`] waits for
    /// it).
    pub fn try_next_batch(&self) -> Option<Result<S::Batch, Error>> {
        self.next_inner(Wait::No)
    }

    fn next_inner(&self, wait: Wait<'_>) -> Option<Result<S::Batch, Error>> {
        let Ok(mut guard) = self.inner.lock() else {
            return Some(Err(Error::Closed));
        };
        let state = &mut *guard;
        if state.loader.seq.is_empty() {
            return Some(Err(Error::InvalidArgument(
                "the sequence has no batch".into(),
            )));
        }
        let loader = &mut state.loader;
        let run = state.run.get_or_insert_with(|| {
            Run::new(
                loader.epoch,
                loader.next_batch,
                loader.seq.len_of_epoch(loader.epoch),
            )
        });
        let result = match run.next(
            &loader.seq,
            &loader.pool,
            &loader.options,
            loader.next_batch,
            wait,
        ) {
            Ok((_, result)) => result,
            Err(Pending::NotReady) => return None,
            Err(Pending::Finished) => return Some(Err(Error::Closed)),
        };
        if loader.delivered() {
            state.run = state.take_ahead();
        }
        state.read_ahead();
        Some(result)
    }

    /// The current position.
    pub fn state(&self) -> Result<LoaderState, Error> {
        Ok(self.inner.lock().map_err(|_| Error::Closed)?.loader.state())
    }

    /// Ends the current epoch early (its epoch-end hook runs and the next
    /// batch is the next epoch's first), if any batch of it was delivered;
    /// right after an epoch ended by itself this does nothing, so a caller
    /// that signals every epoch end advances the epoch exactly once.
    pub fn end_epoch(&self) -> Result<(), Error> {
        let mut guard = self.inner.lock().map_err(|_| Error::Closed)?;
        if guard.loader.next_batch > 0 {
            guard.run = None;
            guard.loader.finish_epoch();
            guard.run = guard.take_ahead();
        }
        Ok(())
    }

    /// Resumes at `state` (see [`Loader::restore`]).
    pub fn restore(&self, state: LoaderState) -> Result<(), Error> {
        let mut guard = self.inner.lock().map_err(|_| Error::Closed)?;
        guard.run = None;
        guard.ahead = None;
        guard.loader.restore(state)
    }

    /// Stops and joins the workers; later calls fail with [`Error::Closed`].
    pub fn close(&self) {
        if let Ok(mut guard) = self.inner.lock() {
            guard.run = None;
            guard.ahead = None;
            guard.loader.pool.shutdown();
        }
    }

    /// Whether [`Generator::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner
            .lock()
            .map_or(true, |g| g.loader.pool.jobs.is_none())
    }
}

impl<S: Sequence> Iterator for Generator<S> {
    type Item = Result<S::Batch, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_batch())
    }
}
