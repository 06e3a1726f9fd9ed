//! What is in memory: loading and unloading on request, making room
//! under `max_loaded_models`, the reaper's idle unloads, and the hook that
//! is told of every load.

use std::time::{Duration, Instant};

use offgrid_config::KeepAlive;

use super::{ModelError, Models};

/// Called after each model load with the model's id and how long the load
/// took (for metrics).
pub type LoadObserver = Box<dyn Fn(&str, Duration) + Send + Sync>;

impl Models {
    /// Sets what is told of every model load (once; a second observer is
    /// ignored).
    pub fn observe_loads(&self, observer: LoadObserver) {
        if self.load_observer.set(observer).is_err() {
            tracing::debug!("a load observer is already set");
        }
    }

    /// Loads model `id` (either kind) if it is not in memory, without
    /// using it; it then stays for `keep_alive` (default: the server's
    /// setting). Blocking.
    pub fn load(&self, id: &str, keep_alive: Option<KeepAlive>) -> Result<(), ModelError> {
        let kind = {
            let inner = self.lock();
            inner
                .installed
                .get(id)
                .map(|e| e.kind)
                .ok_or_else(|| ModelError::not_found(id, inner.installed.is_empty()))?
        };
        self.acquire(id, kind, keep_alive).map(|_| ())
    }

    /// Unloads model `id` now, or as soon as the requests using it end.
    /// `Ok(false)` when it was not loaded.
    pub fn unload(&self, id: &str) -> Result<bool, ModelError> {
        let mut inner = self.lock();
        if !inner.installed.contains_key(id) {
            return Err(ModelError::not_found(id, inner.installed.is_empty()));
        }
        let Some(r) = inner.resident.get_mut(id) else {
            return Ok(false);
        };
        if r.instance.in_use() {
            // The reaper unloads it once the last request lets go.
            r.keep_alive = KeepAlive::For(Duration::ZERO);
        } else {
            inner.resident.remove(id);
            tracing::info!(model = %id, "unloaded on request");
        }
        Ok(true)
    }

    /// Before a load: while `max_loaded` models are in memory, unloads the
    /// least recently used one that no request holds. Models in use stay
    /// (the limit is then exceeded until they finish).
    pub(super) fn make_room(&self) {
        let mut inner = self.lock();
        while inner.resident.len() >= self.max_loaded {
            let victim = inner
                .resident
                .iter()
                .filter(|(_, r)| !r.instance.in_use())
                .min_by_key(|(_, r)| r.last_used)
                .map(|(id, _)| id.clone());
            let Some(id) = victim else {
                tracing::warn!(
                    limit = self.max_loaded,
                    "every loaded model is in use; loading one more than max_loaded_models"
                );
                return;
            };
            inner.resident.remove(&id);
            tracing::info!(model = %id, "unloaded to make room (max_loaded_models)");
        }
    }

    /// Unloads every model whose keep-alive has run out and that no request
    /// holds. Returns the ids unloaded.
    pub(super) fn reap_once(&self) -> Vec<String> {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut gone = Vec::new();
        inner.resident.retain(|id, r| {
            if r.instance.in_use() {
                r.last_used = now;
                return true;
            }
            let keep = r.expires_in(now).is_none_or(|left| !left.is_zero());
            if !keep {
                gone.push(id.clone());
            }
            keep
        });
        gone
    }
}
