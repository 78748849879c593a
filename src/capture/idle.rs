//! Idle time on Wayland, where the compositor tells it (`ext-idle-notify-v1`: KWin 5.27, sway
//! 1.8, Hyprland, river …): a notice after a minute without input, and another when input comes
//! back. Shared by the Wayland back ends through `wayland_client::delegate_dispatch!`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wayland_client::globals::GlobalList;
use wayland_client::protocol::wl_seat;
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::ext::idle_notify::v1::client::{ext_idle_notification_v1 as notice, ext_idle_notifier_v1 as notifier};

/// Idle is told once this long has passed without input; the idle time grows from there.
const NOTICE_MS: u32 = 60_000;

/// When the compositor said the user went idle, if not back since.
#[derive(Default)]
pub struct Since(Mutex<Option<Instant>>);

pub struct Idle {
    since: Arc<Since>,
    /// Kept alive so its events keep coming.
    _notice: notice::ExtIdleNotificationV1,
}

impl Idle {
    /// Asks for idle notices, or `None` when the compositor offers none.
    pub fn bind<D>(globals: &GlobalList, qh: &QueueHandle<D>) -> Option<Idle>
    where
        D: Dispatch<wl_seat::WlSeat, ()> + Dispatch<notifier::ExtIdleNotifierV1, ()> + Dispatch<notice::ExtIdleNotificationV1, Arc<Since>> + 'static,
    {
        let seat = globals.bind::<wl_seat::WlSeat, D, ()>(qh, 1..=1, ()).ok()?;
        let notifier = globals.bind::<notifier::ExtIdleNotifierV1, D, ()>(qh, 1..=1, ()).ok()?;
        let since = Arc::new(Since::default());
        let notice = notifier.get_idle_notification(NOTICE_MS, &seat, qh, since.clone());
        Some(Idle { since, _notice: notice })
    }

    /// Milliseconds without input, as far as the compositor has said (0 before its first notice).
    pub fn idle_ms(&self) -> u32 {
        let since = *self.since.0.lock().unwrap_or_else(|p| p.into_inner());
        since.map_or(0, |t| (NOTICE_MS as u128 + t.elapsed().as_millis()).min(u32::MAX as u128) as u32)
    }
}

impl<D> Dispatch<notice::ExtIdleNotificationV1, Arc<Since>, D> for Idle
where
    D: Dispatch<notice::ExtIdleNotificationV1, Arc<Since>>,
{
    fn event(_: &mut D, _: &notice::ExtIdleNotificationV1, event: notice::Event, since: &Arc<Since>, _: &Connection, _: &QueueHandle<D>) {
        let mut s = since.0.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            notice::Event::Idled => *s = Some(Instant::now()),
            notice::Event::Resumed => *s = None,
            _ => {}
        }
    }
}
