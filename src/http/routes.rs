//! The access policy: every (method, path) the application serves and who may use it.
//!
//! This table is the access policy. It is not what enforces access (the extractors and handlers
//! do that: [`RequireUser`](crate::http::extract::RequireUser),
//! [`RequireSuperuser`](crate::http::extract::RequireSuperuser), the ownership checks of each
//! feature); it is what access *should* be, written down once. The route sweep test
//! (`tests/app/route_sweep.rs`) reads the `.route(…)` calls of `src/http/*.rs`, checks that
//! they and this table name exactly the same routes, and then requests every route as an
//! anonymous visitor, a stranger, the owner and a superuser to check the router against it.
//! So a new route must be added here too, with its policy, or that test fails.

/// Who may use a route (DESIGN.md §3 statuses, §4 "deny by default").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Any logged-in user, on their own account (no id in the path); anonymous visitors are sent
    /// to `/login?next=…`.
    User,
    /// Superusers only: other users get 403, anonymous visitors the login page.
    Superuser,
    /// A user's own resource: the path's `{id}` must belong to the logged-in user. Anyone else
    /// gets 404 (as if it did not exist), except a superuser, who gets 403 (DESIGN.md: "a
    /// superuser trying to edit a CV they do not own").
    Owner,
    /// Readable by its owner and by superusers (e.g. `GET /cvs/{id}`, `/users/{id}/avatar`);
    /// 404 for every other user.
    OwnerOrSuperuser,
}

/// One route of the router and its access policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// The HTTP method, upper case (`GET`, `POST`).
    pub method: &'static str,
    /// The path pattern exactly as given to axum's `.route(…)` (`/cvs/{id}`, `/static/{*path}`).
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
    }
}

use Access::{Owner, OwnerOrSuperuser, Public, Superuser, User};

/// Every route the application serves, grouped as the feature modules declare them.
pub const ROUTES: &[RouteSpec] = &[
    // pages.rs
    route("GET", "/", Public),
    route("GET", "/healthz", Public),
    // accounts.rs
    route("GET", "/register", Public),
    route("POST", "/register", Public),
    route("GET", "/login", Public),
    route("POST", "/login", Public),
    // Logging out an anonymous session is harmless (it just goes home), so no login first.
    route("POST", "/logout", Public),
    // account.rs
    route("GET", "/account/password", User),
    route("POST", "/account/password", User),
    route("GET", "/password-reset", Public),
    route("POST", "/password-reset", Public),
    route("GET", "/password-reset/{token}", Public),
    route("POST", "/password-reset/{token}", Public),
    route("GET", "/account/data", User),
    route("GET", "/account/delete", User),
    route("POST", "/account/delete", User),
    // profile.rs
    route("GET", "/profile", User),
    route("POST", "/profile", User),
    route("POST", "/profile/avatar", User),
    route("POST", "/profile/avatar/delete", User),
    route("GET", "/users/{id}/avatar", OwnerOrSuperuser),
    // cvs.rs
    route("GET", "/cvs", User),
    route("GET", "/cvs/new", User),
    route("POST", "/cvs/new", User),
    route("GET", "/cvs/import", User),
    route("POST", "/cvs/import", User),
    route("GET", "/cvs/{id}", OwnerOrSuperuser),
    route("GET", "/cvs/{id}/print", OwnerOrSuperuser),
    route("GET", "/cvs/{id}/edit", Owner),
    route("POST", "/cvs/{id}/edit", Owner),
    route("POST", "/cvs/{id}/basics", Owner),
    route("POST", "/cvs/{id}/sections/{section}", Owner),
    route("POST", "/cvs/{id}/sections/{section}/{entry}", Owner),
    route("POST", "/cvs/{id}/sections/{section}/{entry}/delete", Owner),
    route("POST", "/cvs/{id}/sections/{section}/{entry}/move", Owner),
    route("POST", "/cvs/{id}/archive", Owner),
    route("POST", "/cvs/{id}/unarchive", Owner),
    route("POST", "/cvs/{id}/duplicate", Owner),
    route("GET", "/cvs/{id}/history", OwnerOrSuperuser),
    route("GET", "/cvs/{id}/versions/{n}", OwnerOrSuperuser),
    route("POST", "/cvs/{id}/versions/{n}/restore", Owner),
    route("GET", "/cvs/{id}/export.json", OwnerOrSuperuser),
    // admin.rs
    route("GET", "/admin", Superuser),
    route("GET", "/admin/analytics.json", Superuser),
    // admin_users.rs
    route("GET", "/admin/users", Superuser),
    route("GET", "/admin/users/new", Superuser),
    route("POST", "/admin/users/new", Superuser),
    route("GET", "/admin/users/{id}", Superuser),
    route("POST", "/admin/users/{id}/role", Superuser),
    route("POST", "/admin/users/{id}/deactivate", Superuser),
    route("POST", "/admin/users/{id}/activate", Superuser),
    route("GET", "/admin/users/{id}/data", Superuser),
    route("POST", "/admin/users/{id}/erase", Superuser),
    // admin_cvs.rs
    route("GET", "/admin/cvs", Superuser),
    route("POST", "/admin/cvs/{id}/archive", Superuser),
    // audit.rs
    route("GET", "/admin/audit", Superuser),
    route("GET", "/admin/audit/export.csv", Superuser),
    route("GET", "/admin/audit/export.jsonl", Superuser),
    route("GET", "/admin/audit/{position}", Superuser),
    // assets.rs
    route("GET", "/static/{*path}", Public),
];
