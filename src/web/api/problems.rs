//! The problem-details answers of the edge, added to every operation of the OpenAPI document
//! in one pass from what the operation declares (its security, parameters and body), so a
//! new route cannot forget them: each set below is what one extractor refuses with.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, PartialSchema};

use crate::web::error::Problem;

/// The content type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Reader` and `Writer`, and the database they look the token up in.
const AUTHENTICATED: &[(u16, &str)] = &[
    (401, "Missing, unknown or revoked API token"),
    (403, "The token's scope does not allow this"),
    (503, "The database is busy; retry after `Retry-After` seconds"),
];

/// `ApiPath`.
const PATH: &[(u16, &str)] = &[(400, "Malformed path"), (422, "A path parameter holds a control character")];

/// `ApiQuery`.
const QUERY: &[(u16, &str)] = &[(400, "Unknown or repeated query parameter"), (422, "Invalid query parameter")];

/// `ApiJson` and the multipart reader.
const BODY: &[(u16, &str)] =
    &[(400, "Malformed body"), (413, "Body too large"), (415, "Unsupported content type"), (422, "Invalid field")];

/// Adds the shared error responses, and makes every error response a problem-details body.
#[derive(Debug, Clone, Copy)]
pub struct Problems;

impl Modify for Problems {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.schemas.entry("Problem".to_owned()).or_insert_with(Problem::schema);
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                add_problems(op);
            }
        }
    }
}

fn add_problems(op: &mut Operation) {
    let declares = |place: ParameterIn| {
        op.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    let mut sets = Vec::new();
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        sets.push(AUTHENTICATED);
    }
    if declares(ParameterIn::Path) {
        sets.push(PATH);
    }
    if declares(ParameterIn::Query) {
        sets.push(QUERY);
    }
    if op.request_body.is_some() {
        sets.push(BODY);
    }
    let responses = &mut op.responses.responses;
    for &(status, description) in sets.into_iter().flatten() {
        // A handler's own description of a status says more than the generic one.
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
    }
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with(['4', '5']), response) {
            as_problem(response);
        }
    }
}

/// Every error the API gives is an [`crate::web::error::ApiError`], so its body is a problem.
fn as_problem(response: &mut Response) {
    response.content.clear();
    response.content.insert(PROBLEM_JSON.to_owned(), RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))));
}
