//! authctl: an authentication service (`authctl serve`) and its operator CLI, over one service layer.
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod entity;
pub mod error;
pub mod http;
pub mod mail;
pub mod password;
pub mod scheduler;
pub mod service;
pub mod tokens;
