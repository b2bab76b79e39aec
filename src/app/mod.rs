//! The desktop app's logic without a window: the view-model the engine's events feed, and the
//! controller between the window and the engine. `src/ui/` shows what this produces.

mod address_book;
mod controller;
mod format;
mod view_model;

pub use address_book::{AddressBook, ContactRow};
pub use controller::{
    account_from_form, default_data_dir, run, AccountForm, Action, AppSetup, Display, HistoryRow,
    Screen,
};
pub use view_model::{
    AccountRow, AccountState, CallRow, Direction, FinishedCall, Phase, Snapshot, ViewModel,
};
