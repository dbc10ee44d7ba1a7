//! Integration tests of the whole application: one binary, one fresh database per test.

mod helpers;

mod accounts;
mod cli;
mod concurrency;
mod cvs;
mod passwords;
mod profile;
mod projections;
mod security;
