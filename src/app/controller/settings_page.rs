//! The Settings page while it is open: the device lists, the level meter and camera preview,
//! and saving what it chose.

use tokio::sync::mpsc;

use super::super::device_check::{
    list_devices, DeviceCheck, DeviceLists, DeviceWatch, RELIST_EVERY,
};
use super::super::settings::{settings_from_form, SettingsForm};
use super::Controller;

/// The Settings page's state while it is open.
pub(super) struct SettingsPage {
    pub(super) open: bool,
    pub(super) lists: DeviceLists,
    /// Device problems the check met ("The microphone cannot be opened: …").
    pub(super) notes: Vec<String>,
    /// Why the last change was refused.
    pub(super) error: String,
    pub(super) check: Option<DeviceCheck>,
    /// Keeps the lists current while the page is open.
    watch: Option<DeviceWatch>,
    pub(super) lists_tx: mpsc::UnboundedSender<DeviceLists>,
    pub(super) device_notes_tx: mpsc::UnboundedSender<String>,
}

impl SettingsPage {
    pub(super) fn new(
        lists_tx: mpsc::UnboundedSender<DeviceLists>,
        device_notes_tx: mpsc::UnboundedSender<String>,
    ) -> Self {
        SettingsPage {
            open: false,
            lists: DeviceLists::default(),
            notes: Vec::new(),
            error: String::new(),
            check: None,
            watch: None,
            lists_tx,
            device_notes_tx,
        }
    }
}

/// Said on the page while a call holds the devices.
const WAITING_FOR_THE_CALL: &str =
    "The level meter and the camera preview wait until the call ends.";

impl Controller {
    pub(super) fn settings_shown(&mut self, open: bool) {
        self.settings.open = open;
        self.settings.notes.clear();
        self.settings.check = None;
        self.settings.watch = open.then(|| {
            DeviceWatch::start(list_devices, RELIST_EVERY, self.settings.lists_tx.clone())
        });
        self.keep_device_check();
    }

    /// While the page is open, the chosen microphone and camera feed its meter and preview —
    /// except during a call, which needs them: the check stops when one begins and starts
    /// again when the last one ends.
    pub(super) fn keep_device_check(&mut self) {
        if !self.settings.open {
            return;
        }
        let in_call = !self.model.calls().is_empty();
        match (in_call, self.settings.check.is_some()) {
            (true, true) => self.settings.check = None,
            (false, false) => {
                self.settings.notes.clear();
                let media = &self.config.media;
                self.settings.check = Some(DeviceCheck::start(
                    media.input.clone(),
                    media.camera,
                    self.settings.device_notes_tx.clone(),
                ));
            }
            _ => {}
        }
        if in_call
            && !self
                .settings
                .notes
                .iter()
                .any(|n| n == WAITING_FOR_THE_CALL)
        {
            self.settings.notes.push(WAITING_FOR_THE_CALL.into());
        }
    }

    pub(super) fn save_settings(&mut self, form: SettingsForm) {
        match settings_from_form(&form, &self.config.media, &self.settings.lists) {
            Ok(settings) => {
                self.settings.error.clear();
                if settings == self.config.media {
                    return;
                }
                let devices_changed = (&settings.input, settings.camera)
                    != (&self.config.media.input, self.config.media.camera);
                self.config.media = settings;
                self.save_config();
                self.accept_calls();
                if devices_changed {
                    self.settings.check = None;
                    self.keep_device_check();
                }
            }
            Err(reason) => self.settings.error = reason,
        }
    }
}
