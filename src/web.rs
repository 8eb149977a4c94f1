//! The page's event loop, for the library on wasm32 (wgpu's WebGPU back end): timers instead
//! of blocking waits. Works wherever `setTimeout` is a global (window, worker, Node).

use std::time::Duration;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A `setTimeout` that calls `f` once after a delay, cleared when dropped.
pub(crate) struct Timeout {
    id: JsValue,
    _closure: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Schedules `f`. Delays beyond `setTimeout`'s range (2³¹−1 ms, about 24.8 days, past
    /// which browsers fire at once) are clamped to it.
    pub(crate) fn new(after: Duration, f: impl FnOnce() + 'static) -> Self {
        let mut f = Some(f);
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(f) = f.take() {
                f()
            }
        });
        let ms = (after.as_secs_f64() * 1e3).min(i32::MAX as f64);
        let id = global_fn("setTimeout")
            .and_then(|set| set.call2(&js_sys::global(), closure.as_ref().unchecked_ref(), &ms.into()).ok())
            .unwrap_or(JsValue::UNDEFINED);
        Timeout { id, _closure: closure }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        if let Some(clear) = global_fn("clearTimeout") {
            let _ = clear.call1(&js_sys::global(), &self.id);
        }
    }
}

/// Resolves after one turn of the event loop (`setTimeout(0)`): lets promises that are
/// ready run their continuations first.
pub(crate) async fn tick() {
    let ch = std::sync::Arc::new(futures_intrusive::channel::OneshotChannel::<()>::new());
    let fired = ch.clone();
    let _timer = Timeout::new(Duration::ZERO, move || {
        let _ = fired.send(());
    });
    ch.receive().await;
}

fn global_fn(name: &str) -> Option<js_sys::Function> {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str(name)).ok()?.dyn_into().ok()
}
