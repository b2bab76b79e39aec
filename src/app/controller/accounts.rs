//! The controller's accounts: resolving and registering them, the account form that adds or
//! changes one, retrying and removing.

use std::time::Duration;

use crate::account;
use crate::config::Account;
use crate::engine::Command;

use super::super::account_form::{account_from_form, edited_account, AccountForm};
use super::super::view_model::AccountState;
use super::Controller;

/// An account the controller handed to the engine.
pub(super) struct AccountEntry {
    pub(super) id: usize,
    pub(super) account: Account,
}

/// The outcome of resolving an account's registrar, off the controller's task.
pub(super) struct Resolved {
    pub(super) id: usize,
    pub(super) result: Result<account::ResolvedAccount, String>,
}

impl Controller {
    /// Resolves the account's registrar in the background, then registers it.
    pub(super) fn start_account(&mut self, account: Account) {
        let id = self.next_id;
        self.next_id += 1;
        self.model
            .account_added(id, &account.name, &account.user, AccountState::Registering);
        let tx = self.resolved_tx.clone();
        let data_dir = self.data_dir.clone();
        let dns = self.config.transport.dns_servers.clone();
        let to_resolve = account.clone();
        tokio::spawn(async move {
            let result = account::resolve(
                &to_resolve,
                data_dir.as_deref(),
                Duration::from_secs(30),
                &dns,
            )
            .await
            .map_err(|e| e.to_string());
            let _ = tx.send(Resolved { id, result });
        });
        self.accounts.push(AccountEntry { id, account });
    }

    pub(super) fn on_resolved(&mut self, resolved: Resolved) {
        if !self.accounts.iter().any(|a| a.id == resolved.id) {
            return;
        }
        match resolved.result {
            Ok(account) => {
                let _ = self.engine.commands.send(Command::Register {
                    account: resolved.id,
                    resolved: Box::new(account),
                });
            }
            Err(reason) => self
                .model
                .account_state(resolved.id, AccountState::Off { reason }),
        }
    }

    /// Fills the account form in the window (over whatever it holds).
    pub(super) fn set_form(&mut self, form: AccountForm) {
        self.form_error.clear();
        self.account_form = form;
        self.form_generation += 1;
    }

    /// Adds the form's account, or changes the one being edited; saves the config.
    pub(super) fn save_account(&mut self, form: AccountForm) {
        let editing = self
            .editing
            .and_then(|id| self.accounts.iter().position(|a| a.id == id));
        let made = match editing {
            Some(index) => edited_account(&self.accounts[index].account, &form),
            None => account_from_form(&form),
        };
        let account = match made {
            Ok(account) => account,
            Err(reason) => {
                self.form_error = reason;
                return;
            }
        };
        match editing {
            Some(index) => {
                let old = &self.accounts[index].account;
                match self.config.accounts.iter_mut().find(|a| **a == *old) {
                    Some(saved) => *saved = account.clone(),
                    None => self.config.accounts.push(account.clone()),
                }
                self.replace_account(index, account);
            }
            None => {
                self.config.accounts.push(account.clone());
                self.start_account(account);
            }
        }
        self.save_config();
        self.editing = None;
        self.set_form(AccountForm::default());
        // Incoming calls take the first account's media settings.
        self.accept_calls();
    }

    /// Unregisters the account at `index` and registers `account` in its place.
    pub(super) fn replace_account(&mut self, index: usize, account: Account) {
        self.unregister(index);
        self.start_account(account);
        if let Some(entry) = self.accounts.pop() {
            self.model.place_account(entry.id, index);
            self.accounts.insert(index, entry);
        }
    }

    pub(super) fn remove_account(&mut self, index: usize) {
        if index >= self.accounts.len() {
            return;
        }
        let entry = self.unregister(index);
        // The saved entry this one was made from: another account may have the same address.
        if let Some(saved) = self
            .config
            .accounts
            .iter()
            .position(|a| *a == entry.account)
        {
            self.config.accounts.remove(saved);
        }
        self.save_config();
        if self.editing == Some(entry.id) {
            self.editing = None;
            self.set_form(AccountForm::default());
        }
    }

    /// Takes the account at `index` out of the engine and the list.
    fn unregister(&mut self, index: usize) -> AccountEntry {
        let entry = self.accounts.remove(index);
        let _ = self
            .engine
            .commands
            .send(Command::Unregister { account: entry.id });
        self.model.account_removed(entry.id);
        entry
    }
}
