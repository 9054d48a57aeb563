//! The system tray: the menu model (`menu.rs`) made into a native menu, and what its items do.
//! Without a tray host (a bare X server) the icon simply does not show; the app still runs.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};
use tauri_plugin_opener::OpenerExt;

use crate::api::Api;
use crate::menu::{Action, Entry, Snapshot, build};

const TRAY: &str = "main";

pub fn create(app: &AppHandle) -> tauri::Result<TrayIcon> {
    let icon = Image::from_bytes(include_bytes!("../icons/tray.png"))?;
    TrayIconBuilder::with_id(TRAY)
        .icon(icon)
        .tooltip("AI Environment Manager")
        .menu(&native(app, &build(&Snapshot::default()))?)
        .on_menu_event(|app, event| act(app, event.id().as_ref()))
        .build(app)
}

/// Rebuilds the menu from a new picture of the node.
pub fn refresh(app: &AppHandle, snapshot: &Snapshot) {
    let Some(tray) = app.tray_by_id(TRAY) else {
        return;
    };
    match native(app, &build(snapshot)) {
        Ok(menu) => {
            let _ = tray.set_menu(Some(menu));
        }
        Err(e) => tracing::warn!("cannot update the tray menu: {e}"),
    }
}

fn native(app: &AppHandle, entries: &[Entry]) -> tauri::Result<Menu<Wry>> {
    let items = items(app, entries)?;
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|b| b.as_ref()).collect();
    Menu::with_items(app, &refs)
}

fn items(app: &AppHandle, entries: &[Entry]) -> tauri::Result<Vec<Box<dyn IsMenuItem<Wry>>>> {
    entries
        .iter()
        .map(|e| -> tauri::Result<Box<dyn IsMenuItem<Wry>>> {
            Ok(match e {
                Entry::Item { id, label, enabled } => {
                    Box::new(MenuItem::with_id(app, id, label, *enabled, None::<&str>)?)
                }
                Entry::Check { id, label, checked } => Box::new(CheckMenuItem::with_id(
                    app,
                    id,
                    label,
                    true,
                    *checked,
                    None::<&str>,
                )?),
                Entry::Separator => Box::new(PredefinedMenuItem::separator(app)?),
                Entry::Submenu { label, items: sub } => {
                    let sub = items(app, sub)?;
                    let refs: Vec<&dyn IsMenuItem<Wry>> = sub.iter().map(|b| b.as_ref()).collect();
                    Box::new(Submenu::with_items(app, label, true, &refs)?)
                }
            })
        })
        .collect()
}

fn act(app: &AppHandle, id: &str) {
    let Some(action) = Action::parse(id) else {
        return;
    };
    let api = app.state::<Api>().inner().clone();
    let app = app.clone();
    match action {
        Action::OpenWindow => crate::window::open(&app, None),
        Action::OpenView(v) => crate::window::open(&app, Some(&v)),
        Action::OpenLink(url) => {
            if let Err(e) = app.opener().open_url(&url, None::<&str>) {
                tracing::warn!("cannot open {url}: {e}");
            }
        }
        Action::Quit => crate::quit(app),
        Action::Start {
            workspace,
            environment,
        } => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = api.start(&workspace, &environment).await {
                    crate::notify(&app, format!("Cannot start {environment}"), e.to_string());
                }
            });
        }
        Action::Stop { run } => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = api.stop(&run).await {
                    crate::notify(&app, "Cannot stop the run".into(), e.to_string());
                }
            });
        }
        Action::Decide { request, approve } => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = api.decide(&request, approve).await {
                    crate::notify(&app, "Cannot answer the request".into(), e.to_string());
                }
            });
        }
        Action::PauseSharing(paused) => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = api.pause_sharing(paused).await {
                    crate::notify(&app, "Cannot change sharing".into(), e.to_string());
                }
            });
        }
    }
}
