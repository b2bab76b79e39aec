//! The REGISTER client.
