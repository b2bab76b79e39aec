//! The desktop app's logic without a window: the view-model the engine's events feed, and the
//! controller between the window and the engine. `callisto-ui` (`ui/src/`) shows what this produces.

mod account_form;
mod address_book;
mod call_stats;
mod controller;
mod device_check;
mod format;
mod notifier;
mod ringer;
mod settings;
mod view_model;

pub use account_form::{account_from_form, AccountForm};
pub use address_book::{AddressBook, ContactRow};
pub use controller::{default_data_dir, run, Action, AppSetup, Display, HistoryRow, Screen};
pub use device_check::{
    list_devices, meter_level, DeviceCheck, DeviceLists, DevicePreview, DeviceWatch, RELIST_EVERY,
};
pub use notifier::{Bus, Choice, Note, Notifier};
pub use ringer::Ringer;
pub use settings::{SettingsForm, SettingsScreen, SYSTEM_DEFAULT, VIDEO_RATES, VIDEO_SIZES};
pub use view_model::{
    AccountRow, AccountState, CallRow, Direction, FinishedCall, Phase, Snapshot, ViewModel,
};
