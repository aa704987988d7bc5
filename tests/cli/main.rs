//! The CLI tests: the built `authctl` binary on a temporary SQLite database.
mod completions;
mod deletion;
mod helpers;
mod migrate;
mod serve;
mod sessions;
mod users;
