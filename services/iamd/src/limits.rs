//! The refusal of a request body past a limit its wire type declares
//! (`validator`): a 400 that names the element and the bound, never the
//! value (it may be a password).

use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::ApiError;

/// 400 naming the first element of `body` past its declared limit.
pub(crate) fn check(body: &impl Validate) -> Result<(), ApiError> {
    body.validate()
        .map_err(|errors| ApiError::bad_request(describe(&errors)))
}

/// One sentence for the first failed limit.
fn describe(errors: &ValidationErrors) -> String {
    let mut fields: Vec<_> = errors.errors().iter().collect();
    fields.sort_by_key(|(field, _)| field.to_string());
    for (field, kind) in fields {
        let element = camel_case(field);
        match kind {
            ValidationErrorsKind::Field(failures) => {
                if let Some(failure) = failures.first() {
                    if let Some(message) = &failure.message {
                        return format!("The element `{element}` allows {message}.");
                    }
                    let bound = |name: &str| failure.params.get(name).map(ToString::to_string);
                    if failure.code == "range" {
                        let (min, max) = (
                            bound("min").unwrap_or_default(),
                            bound("max").unwrap_or_default(),
                        );
                        return format!("The element `{element}` must be between {min} and {max}.");
                    }
                    return match (bound("min"), bound("max")) {
                        (Some(min), Some(max)) => format!(
                            "The element `{element}` must be between {min} and {max} characters long \
                             (items, for a list)."
                        ),
                        (None, Some(max)) => format!(
                            "The element `{element}` is too long: at most {max} characters (items, for a list)."
                        ),
                        (Some(min), None) => format!(
                            "The element `{element}` is too short: at least {min} characters (items, for a list)."
                        ),
                        (None, None) => format!("The element `{element}` is not valid."),
                    };
                }
            }
            ValidationErrorsKind::Struct(inner) => return describe(inner),
            ValidationErrorsKind::List(items) => {
                if let Some((_, inner)) = items.iter().next() {
                    return describe(inner);
                }
            }
        }
    }
    "The request body is not valid.".to_owned()
}

/// `family_name` → `familyName`: the wire's name of a Rust field.
fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::camel_case;

    #[test]
    fn rust_fields_become_wire_names() {
        assert_eq!(camel_case("family_name"), "familyName");
        assert_eq!(camel_case("lifetime_days"), "lifetimeDays");
        assert_eq!(camel_case("email"), "email");
    }
}
