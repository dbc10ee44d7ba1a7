//! Integration tests of the whole application: one binary, one fresh database per test.

mod helpers;

mod accounts;
mod admin_audit;
mod admin_dashboard;
mod admin_users;
mod aggregate_cache;
mod browser;
mod cli;
mod concurrency;
mod crash;
mod cvs;
mod hostile_input;
mod jobs;
mod passwords;
mod privacy;
mod profile;
mod projections;
mod real_server;
mod route_sweep;
mod security;
mod seed;
mod xss;
