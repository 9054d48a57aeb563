//! The routes, one file per resource.

mod access;
mod clones;
mod events;
mod health;
mod items;
mod models;
mod packages;
mod peers;
mod remote;
mod runs;
mod settings;
mod sharing;
mod transfer;
pub(crate) mod ui;
mod workspaces;

pub(crate) use access::Who;
pub(crate) use workspaces::ListCache;

use aienv_node::Node;
use axum::http::{StatusCode, Uri};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;

pub(crate) fn api() -> OpenApiRouter<Node> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(settings::show, settings::update))
        .routes(routes!(workspaces::list, workspaces::create))
        .routes(routes!(workspaces::propose))
        .routes(routes!(
            workspaces::show,
            workspaces::update,
            workspaces::remove
        ))
        .routes(routes!(workspaces::manifest, workspaces::replace_manifest))
        .routes(routes!(items::list_projects, items::add_project))
        .routes(routes!(
            items::show_project,
            items::replace_project,
            items::remove_project
        ))
        .routes(routes!(items::list_environments, items::add_environment))
        .routes(routes!(
            items::show_environment,
            items::replace_environment,
            items::remove_environment
        ))
        .routes(routes!(events::events))
        .routes(routes!(peers::list, peers::add))
        .routes(routes!(peers::list_static))
        .routes(routes!(peers::remove_static))
        .routes(routes!(peers::catalog))
        .routes(routes!(peers::shares))
        .routes(routes!(peers::files))
        .routes(routes!(transfer::stream))
        .routes(routes!(transfer::image))
        .routes(routes!(clones::list, clones::start))
        .routes(routes!(clones::show, clones::cancel))
        .routes(routes!(peers::discovery))
        .routes(routes!(sharing::show, sharing::set))
        .routes(routes!(runs::resources))
        .routes(routes!(runs::list, runs::start))
        .routes(routes!(runs::show, runs::stop))
        .routes(routes!(runs::logs))
        .routes(routes!(runs::usage))
        .routes(routes!(access::request))
        .routes(routes!(access::pending))
        .routes(routes!(access::decide))
        .routes(routes!(access::create_token, access::list_tokens))
        .routes(routes!(access::revoke_token))
        .routes(routes!(access::audit))
        .routes(routes!(access::trusted))
        .routes(routes!(access::trust))
        .routes(routes!(access::secret_scan))
        .routes(routes!(models::served))
        .routes(routes!(models::revision))
        .routes(routes!(models::blob))
        .routes(routes!(models::overview))
        .routes(routes!(models::pull))
        .routes(routes!(models::pulls))
        .routes(routes!(models::show_pull))
        .routes(routes!(items::lock_environment))
        .routes(routes!(remote::start))
        .routes(routes!(remote::show, remote::stop))
        .routes(routes!(remote::logs))
        .routes(routes!(remote::changes))
        .routes(routes!(remote::outputs))
        .routes(routes!(remote::placement))
        .routes(routes!(packages::peer_listing))
        .routes(routes!(packages::peer_file))
        .routes(routes!(packages::index_root))
        .routes(routes!(packages::index_project))
        .routes(routes!(packages::index_file))
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no such path {}; the API is described at /api/v1/openapi.json",
            uri.path()
        ),
    )
}
