//! The workflows this instance runs, with their stages and moves.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::workflow::Workflow;
use crate::service::Service;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiPath, Reader};

/// Routes for workflows.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_workflows)).routes(routes!(get_workflow))
}

/// A move out of a stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoveOutline {
    /// Target stage.
    pub to: String,
    /// Button label.
    pub label: String,
}

/// A stage of a workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageOutline {
    /// Key.
    pub key: String,
    /// Customer-facing label.
    pub label: String,
    /// Customer-facing text.
    pub text: String,
    /// Expected duration in seconds (absent for final stages).
    pub expected_seconds: Option<u64>,
    /// Whether entering it notifies the customer.
    pub notify: bool,
    /// Whether a photo is expected.
    pub photo: bool,
    /// Whether the customer sees it.
    pub visible: bool,
    /// Whether orders end here.
    pub is_final: bool,
    /// Moves allowed out of it.
    pub moves: Vec<MoveOutline>,
}

/// A workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowOut {
    /// Key.
    pub key: String,
    /// Name.
    pub name: String,
    /// Stages in order.
    pub stages: Vec<StageOutline>,
}

/// All workflows.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowList {
    /// The workflows, by key.
    pub items: Vec<WorkflowOut>,
}

impl From<&Workflow> for WorkflowOut {
    fn from(wf: &Workflow) -> Self {
        Self {
            key: wf.key.to_string(),
            name: wf.name.clone(),
            stages: wf
                .stages
                .iter()
                .map(|s| StageOutline {
                    key: s.key.to_string(),
                    label: s.wording.label.clone(),
                    text: s.wording.text.clone(),
                    expected_seconds: s.expected.map(|d| d.as_secs()),
                    notify: s.notify,
                    photo: s.photo,
                    visible: s.visible,
                    is_final: s.is_final(),
                    moves: s
                        .moves
                        .iter()
                        .map(|m| MoveOutline { to: m.to.to_string(), label: m.label.clone() })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// List workflows.
#[utoipa::path(
    get, path = "/workflows", tag = "workflows",
    responses((status = 200, description = "Workflows", body = WorkflowList)),
    security(("bearer" = ["read"]))
)]
async fn list_workflows(State(service): State<Service>, _reader: Reader) -> Json<WorkflowList> {
    Json(WorkflowList { items: service.workflows().iter().map(WorkflowOut::from).collect() })
}

/// Get one workflow.
#[utoipa::path(
    get, path = "/workflows/{key}", tag = "workflows",
    params(("key" = String, Path, description = "Workflow key")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowOut),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn get_workflow(
    State(service): State<Service>,
    _reader: Reader,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<WorkflowOut>> {
    service.workflows().get(&key).map(|wf| Json(WorkflowOut::from(wf))).ok_or_else(|| {
        ApiError::not_found(format!("no workflow `{key}` (known: {})", service.workflows().keys().join(", ")))
    })
}
