//! The Settings page while it is open: the device lists, the level meter and camera preview,
//! and saving what it chose.

use tokio::sync::mpsc;

use super::super::device_check::{list_devices, DeviceCheck, DeviceLists};
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
            lists_tx,
            device_notes_tx,
        }
    }
}

impl Controller {
    pub(super) fn settings_shown(&mut self, open: bool) {
        self.settings.open = open;
        self.settings.notes.clear();
        self.settings.check = None;
        if !open {
            return;
        }
        let tx = self.settings.lists_tx.clone();
        tokio::task::spawn_blocking(move || {
            let _ = tx.send(list_devices());
        });
        self.start_device_check();
    }

    /// Opens the chosen microphone and camera for the page's meter and preview, unless a call
    /// has them.
    pub(super) fn start_device_check(&mut self) {
        self.settings.check = None;
        if !self.model.calls().is_empty() {
            self.settings
                .notes
                .push("The level meter and the camera preview wait until the call ends.".into());
            return;
        }
        let media = &self.config.media;
        self.settings.check = Some(DeviceCheck::start(
            media.input.clone(),
            media.camera,
            self.settings.device_notes_tx.clone(),
        ));
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
                if devices_changed && self.settings.open {
                    self.settings.notes.clear();
                    self.start_device_check();
                }
            }
            Err(reason) => self.settings.error = reason,
        }
    }
}
