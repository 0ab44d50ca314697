//! Bounded background prefetching ([`Prefetch`]): a producer thread runs an
//! iterator of `Result` items ahead of the consumer, through a
//! `std::sync::mpsc::sync_channel`, never more than `capacity` items ahead.

use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use crate::error::{DataError, Result};

use super::batcher::{HostBatch, TrainLoader};
use super::item::ItemTransform;

/// An iterator whose items are produced on a background thread.
///
/// Memory bound: at most `capacity` produced items exist that the consumer
/// has not received yet (`capacity - 1` waiting in the channel plus one the
/// producer holds while it waits to hand it over); the producer then blocks
/// before pulling the next item from its source. So a loader holds at most
/// `capacity` finished batches plus the one it is building.
///
/// An `Err` item is passed on and ends the stream. Dropping the iterator
/// stops the producer (after the item it is building) and waits for it.
#[derive(Debug)]
pub struct Prefetch<T> {
    rx: Option<Receiver<Result<T>>>,
    handle: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Prefetch<T> {
    /// Starts a thread that pulls `source` at most `capacity` (≥ 1) items
    /// ahead of the consumer.
    pub fn spawn<I>(capacity: usize, source: I) -> Result<Self>
    where
        I: Iterator<Item = Result<T>> + Send + 'static,
    {
        if capacity == 0 {
            return Err(DataError::InvalidArgument(
                "prefetch capacity must be at least 1 batch".into(),
            ));
        }
        let (tx, rx) = sync_channel(capacity - 1);
        let handle = std::thread::Builder::new()
            .name("reid-prefetch".into())
            .spawn(move || {
                for item in source {
                    let last = item.is_err();
                    if tx.send(item).is_err() || last {
                        break;
                    }
                }
            })
            .map_err(|e| DataError::io("<reid-prefetch thread>", e))?;
        Ok(Self {
            rx: Some(rx),
            handle: Some(handle),
        })
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let rx = self.rx.as_ref()?;
        match rx.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                // The producer is done (or died): report a panic once.
                self.rx = None;
                let handle = self.handle.take()?;
                match handle.join() {
                    Ok(()) => None,
                    Err(payload) => {
                        let msg = payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        Some(Err(DataError::io(
                            "<reid-prefetch thread>",
                            std::io::Error::other(format!("the producer panicked: {msg}")),
                        )))
                    }
                }
            }
        }
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Closing the channel makes the producer's next send fail.
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl<T: ItemTransform + 'static> TrainLoader<T> {
    /// Loads the index `batches` of `epoch` on a background thread, at most
    /// `capacity` finished batches ahead of the consumer (see [`Prefetch`]).
    /// Batch `b` is [`TrainLoader::load`]`(&batches[b], epoch, b)`; batches
    /// whose images were all skipped are left out. Move each batch to a
    /// device with [`HostBatch::into_tensors`].
    pub fn epoch(
        &self,
        batches: Vec<Vec<usize>>,
        epoch: u64,
        capacity: usize,
    ) -> Result<Prefetch<HostBatch>> {
        let loader = self.clone();
        let source = batches
            .into_iter()
            .enumerate()
            .map(move |(b, indices)| loader.load(&indices, epoch, b as u64))
            .filter(|r| !matches!(r, Ok(batch) if batch.is_empty()));
        Prefetch::spawn(capacity, source)
    }
}
