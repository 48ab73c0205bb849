//! Organizations, workspaces and users.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::Session;
use super::entities::{membership, organization, user, workspace};

pub async fn any_organization_exists<C: Session>(db: &C) -> Result<bool, DbErr> {
    Ok(organization::Entity::find().count(db).await? > 0)
}

pub async fn insert_organization<C: Session>(
    db: &C,
    id: Uuid,
    name: &str,
    create_time: DateTime<Utc>,
) -> Result<organization::Model, DbErr> {
    let model = organization::Model {
        id,
        name: name.to_owned(),
        create_time,
    };
    organization::Entity::insert(organization::ActiveModel {
        id: Set(model.id),
        name: Set(model.name.clone()),
        create_time: Set(model.create_time),
    })
    .exec_without_returning(db)
    .await?;
    Ok(model)
}

pub async fn find_organization<C: Session>(
    db: &C,
    id: Uuid,
) -> Result<Option<organization::Model>, DbErr> {
    organization::Entity::find_by_id(id).one(db).await
}

pub async fn insert_workspace<C: Session>(
    db: &C,
    id: Uuid,
    organization_id: Uuid,
    name: &str,
    create_time: DateTime<Utc>,
) -> Result<workspace::Model, DbErr> {
    let model = workspace::Model {
        id,
        organization_id,
        name: name.to_owned(),
        create_time,
    };
    workspace::Entity::insert(workspace::ActiveModel {
        id: Set(model.id),
        organization_id: Set(model.organization_id),
        name: Set(model.name.clone()),
        create_time: Set(model.create_time),
    })
    .exec_without_returning(db)
    .await?;
    Ok(model)
}

pub async fn find_workspace<C: Session>(
    db: &C,
    id: Uuid,
) -> Result<Option<workspace::Model>, DbErr> {
    workspace::Entity::find_by_id(id).one(db).await
}

/// The workspaces of `organization_id` that `user_id` belongs to, oldest
/// first, in one query.
pub async fn workspaces_of_member<C: Session>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Vec<workspace::Model>, DbErr> {
    let member_of = Query::select()
        .column(membership::Column::WorkspaceId)
        .from(membership::Entity)
        .and_where(membership::Column::UserId.eq(user_id))
        .to_owned();
    workspace::Entity::find()
        .filter(workspace::Column::OrganizationId.eq(organization_id))
        .filter(workspace::Column::Id.in_subquery(member_of))
        .order_by_asc(workspace::Column::CreateTime)
        .order_by_asc(workspace::Column::Id)
        .all(db)
        .await
}

pub async fn find_user<C: Session>(db: &C, id: Uuid) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

pub async fn find_user_by_email<C: Session>(
    db: &C,
    email: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await
}

/// The user with `email`, created with `display_name` if new. A concurrent
/// insert of the same address is absorbed by the unique index.
pub async fn find_or_create_user<C: Session>(
    db: &C,
    email: &str,
    display_name: &str,
    create_time: DateTime<Utc>,
) -> Result<(user::Model, bool), DbErr> {
    if let Some(existing) = find_user_by_email(db, email).await? {
        return Ok((existing, false));
    }
    let inserted = user::Entity::insert(user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.to_owned()),
        display_name: Set(display_name.to_owned()),
        create_time: Set(create_time),
    })
    .on_conflict_do_nothing_on([user::Column::Email])
    .exec_without_returning(db)
    .await?;
    let created = matches!(inserted, sea_orm::TryInsertResult::Inserted(count) if count > 0);
    let user = find_user_by_email(db, email)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("user {email} after insert")))?;
    Ok((user, created))
}

/// Every organization, oldest first: for operators only.
pub async fn list_organizations<C: Session>(db: &C) -> Result<Vec<organization::Model>, DbErr> {
    organization::Entity::find()
        .order_by_asc(organization::Column::CreateTime)
        .order_by_asc(organization::Column::Id)
        .all(db)
        .await
}

/// Every workspace, or those of one organization, oldest first: for
/// operators only.
pub async fn list_workspaces<C: Session>(
    db: &C,
    organization_id: Option<Uuid>,
) -> Result<Vec<workspace::Model>, DbErr> {
    let mut query = workspace::Entity::find();
    if let Some(organization_id) = organization_id {
        query = query.filter(workspace::Column::OrganizationId.eq(organization_id));
    }
    query
        .order_by_asc(workspace::Column::CreateTime)
        .order_by_asc(workspace::Column::Id)
        .all(db)
        .await
}
