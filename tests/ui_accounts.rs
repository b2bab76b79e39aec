//! The window's accounts page and address field clicked through with Slint's testing backend,
//! against Kamailio: two accounts for one address, the second refused by the server in words;
//! "Retry" registers an account again; "Remove" takes the second out of the list and the saved
//! configuration while the first stays registered. On the dial page an address that is no SIP
//! address is explained under the field as it is typed, and a contact's address is offered as
//! a completion, which a click puts in the field.

mod support;
#[path = "support/window_script.rs"]
mod window_script;

use std::error::Error;
use std::path::Path;

use callisto::config::Config;
use callisto_ui::{AccountsAdapter, ContactsAdapter, DialerAdapter, MainWindow, Nav};
use slint::{ComponentHandle, Model};
use support::kamailio::Kamailio;
use window_script::{click, click_nth, on_ui, run_window, type_into, wait_until, Weak, WAIT};

/// Each account's address and what the page says of its state.
fn accounts(w: &MainWindow) -> Vec<(String, String)> {
    w.global::<AccountsAdapter>()
        .get_accounts()
        .iter()
        .map(|a| (a.user.to_string(), format!("{}: {}", a.state, a.detail)))
        .collect()
}

/// Fills the account form and adds the account.
fn add_account(window: &Weak, user: String, password: &str, registrar: &str) -> Result<(), String> {
    type_into(window, "Address, e.g. sip:alice@example.org", user)?;
    type_into(window, "Password", password.to_owned())?;
    type_into(
        window,
        "Server (optional), e.g. sip:pbx.example.org",
        registrar.to_owned(),
    )?;
    click(window, "Add account")
}

fn script(window: Weak, kamailio: &Kamailio, dir: &Path) -> Result<(), Box<dyn Error>> {
    let port = kamailio.config().udp_port;
    let registrar = format!("sip:127.0.0.1:{port}");
    let alice = format!("sip:alice@127.0.0.1:{port}");
    let bob = format!("sip:bob@127.0.0.1:{port}");
    wait_until(&window, "the first-run welcome", |w| {
        w.global::<Nav>().get_first_run()
    })?;
    click(&window, "Accounts")?;
    add_account(&window, alice.clone(), "alice-secret", &registrar)?;
    wait_until(&window, "alice registered", |w| {
        accounts(w)
            .first()
            .is_some_and(|a| a.1.starts_with("Registered"))
    })?;
    // The same address again with a wrong password: the server refuses it, and the page says
    // so in words.
    add_account(&window, alice.clone(), "not-alices", &registrar)?;
    wait_until(&window, "the second account refused", |w| {
        accounts(w)
            .get(1)
            .is_some_and(|a| a.1.starts_with("Failed") || a.1.starts_with("Retrying"))
    })?;
    let shown = on_ui(&window, accounts)?;
    assert!(
        shown[1].1.contains("403") || shown[1].1.to_lowercase().contains("password"),
        "{shown:?}"
    );

    // Retry: alice's account registers again, with a REGISTER of its own.
    let alice_registers = |k: &Kamailio| {
        k.registers()
            .iter()
            .filter(|r| r.to.contains("alice"))
            .count()
    };
    let before = alice_registers(kamailio);
    click_nth(&window, "Retry", 0)?;
    let deadline = std::time::Instant::now() + WAIT;
    while alice_registers(kamailio) <= before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        alice_registers(kamailio) > before,
        "no new REGISTER from alice after Retry"
    );
    wait_until(&window, "alice registered again", |w| {
        accounts(w)
            .first()
            .is_some_and(|a| a.1.starts_with("Registered"))
    })?;

    // Remove the second: the list and the saved configuration keep the first alone, still
    // registered (the address both share does not take the first with it).
    click_nth(&window, "Remove", 1)?;
    let expected_user = alice.clone();
    wait_until(&window, "the second account removed", move |w| {
        let shown = accounts(w);
        shown.len() == 1 && shown[0].0 == expected_user && shown[0].1.starts_with("Registered")
    })?;
    let saved = Config::load(&dir.join("config.toml"))?;
    let kept: Vec<(&str, Option<&str>)> = saved
        .accounts
        .iter()
        .map(|a| (a.user.as_str(), a.password.as_deref()))
        .collect();
    assert_eq!(kept, [(alice.as_str(), Some("alice-secret"))]);

    // The dial page: what is no SIP address is explained as it is typed, and goes away when
    // the address is right.
    click(&window, "Dial")?;
    let field = "sip:bob@example.org, a number or a name";
    type_into(&window, field, "sip:bob@exa mple.org".to_owned())?;
    wait_until(&window, "the address explained", |w| {
        w.global::<DialerAdapter>()
            .get_error()
            .contains("has a space in it")
    })?;
    type_into(&window, field, bob.clone())?;
    wait_until(&window, "the explanation gone", |w| {
        w.global::<DialerAdapter>().get_error().is_empty()
    })?;

    // A contact's address is offered for the start of its name; a click takes it.
    click(&window, "Contacts")?;
    type_into(&window, "Name", "Bob Builder".to_owned())?;
    type_into(&window, "sip:bob@example.org, +49 30 1234", bob.clone())?;
    click(&window, "Add contact")?;
    wait_until(&window, "the contact saved", |w| {
        w.global::<ContactsAdapter>().get_rows().row_count() == 1
    })?;
    click(&window, "Dial")?;
    type_into(&window, field, "Bob B".to_owned())?;
    let offered = bob.clone();
    wait_until(&window, "bob's address offered", move |w| {
        w.global::<DialerAdapter>()
            .get_completions()
            .iter()
            .any(|c| c == offered.as_str())
    })?;
    click(&window, &bob)?;
    let taken = bob.clone();
    wait_until(&window, "the completion in the field", move |w| {
        w.global::<DialerAdapter>().get_address() == taken.as_str()
    })?;
    Ok(())
}

#[test]
fn accounts_are_retried_and_removed_and_the_address_field_explains_and_completes() {
    let users = [("alice", "alice-secret"), ("bob", "bob-secret")];
    let saved = run_window(&users, script);
    assert!(
        !saved.contains("not-alices"),
        "the second was removed: {saved}"
    );
}
