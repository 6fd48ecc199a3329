//! Lark id types, inferred from an id's form when the agent does not say.

use schemars::JsonSchema;
use serde::Deserialize;

/// How a person is identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(inline)]
#[serde(rename_all = "snake_case")]
pub enum UserIdType {
    OpenId,
    UnionId,
    UserId,
}

impl UserIdType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserIdType::OpenId => "open_id",
            UserIdType::UnionId => "union_id",
            UserIdType::UserId => "user_id",
        }
    }

    /// `ou_` → open_id, `on_` → union_id, anything else is a tenant user_id.
    pub fn infer(id: &str) -> UserIdType {
        if id.starts_with("ou_") {
            UserIdType::OpenId
        } else if id.starts_with("on_") {
            UserIdType::UnionId
        } else {
            UserIdType::UserId
        }
    }

    pub fn resolve(given: Option<UserIdType>, id: &str) -> UserIdType {
        given.unwrap_or_else(|| UserIdType::infer(id))
    }
}

/// How a department is identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(inline)]
#[serde(rename_all = "snake_case")]
pub enum DepartmentIdType {
    OpenDepartmentId,
    DepartmentId,
}

impl DepartmentIdType {
    pub fn as_str(self) -> &'static str {
        match self {
            DepartmentIdType::OpenDepartmentId => "open_department_id",
            DepartmentIdType::DepartmentId => "department_id",
        }
    }

    /// `od-` → open_department_id; "0" (the root) and custom ids → department_id.
    pub fn infer(id: &str) -> DepartmentIdType {
        if id.starts_with("od-") {
            DepartmentIdType::OpenDepartmentId
        } else {
            DepartmentIdType::DepartmentId
        }
    }

    pub fn resolve(given: Option<DepartmentIdType>, id: &str) -> DepartmentIdType {
        given.unwrap_or_else(|| DepartmentIdType::infer(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_types_follow_the_prefix() {
        assert_eq!(UserIdType::infer("ou_1"), UserIdType::OpenId);
        assert_eq!(UserIdType::infer("on_1"), UserIdType::UnionId);
        assert_eq!(UserIdType::infer("4g3f"), UserIdType::UserId);
        assert_eq!(
            DepartmentIdType::infer("od-1"),
            DepartmentIdType::OpenDepartmentId
        );
        assert_eq!(DepartmentIdType::infer("0"), DepartmentIdType::DepartmentId);
        assert_eq!(
            UserIdType::resolve(Some(UserIdType::UserId), "ou_1"),
            UserIdType::UserId
        );
    }
}
