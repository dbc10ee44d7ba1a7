//! CV Manager, the application crate: configuration, startup, the HTTP layer, background jobs
//! and the CLI. The domain (`domain` crate) and the read side (`projections` crate) are separate
//! so that each can be understood and tested alone.

pub mod accounts;
pub mod administration;
pub mod aggregate_cache;
pub mod app;
pub mod avatars;
pub mod charts;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cv_view;
pub mod cvs;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod passwords;
pub mod privacy;
pub mod profiles;
pub mod seed;
pub mod throttle;
