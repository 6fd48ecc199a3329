//! Pins: pin, unpin, list (with Lark's per-message pin rate limit).

use super::*;

pub(super) fn pin_json(p: &Pin) -> Value {
    json!({
        "message_id": p.message_id,
        "chat_id": p.chat_id,
        "operator_id": p.operator_id,
        "operator_id_type": if p.operator_is_bot { "app_id" } else { "open_id" },
        "create_time": p.create_time_ms.to_string(),
    })
}

/// Pin and unpin: at most 5 per second per message (230047).
pub(super) fn admit_pin(world: &mut World, id: &str, now: u64) -> Result<(), ApiError> {
    if world.admit(&format!("pin\u{1f}{id}"), now, 5) {
        Ok(())
    } else {
        Err(err(
            codes::PIN_RATE_LIMITED,
            "Pin/Unpin message trigger message_id limit.",
        ))
    }
}

#[derive(Deserialize)]
pub(super) struct PinBody {
    #[serde(default)]
    message_id: String,
}

pub(super) fn pin(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let body: PinBody = call.json()?;
    if body.message_id.is_empty() {
        return Err(ApiError::field("message_id", "", "message_id is required"));
    }
    let id = body.message_id;
    bot_check(world)?;
    let (m, chat) = reachable(world, &id)?;
    if m.deleted {
        return Err(recalled());
    }
    let chat_id = chat.chat_id.clone();
    if let Some(p) = world.pins.iter().find(|p| p.message_id == id) {
        return Ok(Reply::Data(json!({"pin": pin_json(p)})));
    }
    admit_pin(world, &id, call.now_ms)?;
    let p = Pin {
        message_id: id,
        chat_id,
        operator_id: world.app.app_id.clone(),
        operator_is_bot: true,
        create_time_ms: call.now_ms,
    };
    let data = json!({"pin": pin_json(&p)});
    world.pins.push(p);
    Ok(Reply::Data(data))
}

pub(super) fn unpin(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let id = call.path_param("message_id").to_string();
    bot_check(world)?;
    reachable(world, &id)?;
    admit_pin(world, &id, call.now_ms)?;
    // Unpinning what is not pinned succeeds too.
    world.pins.retain(|p| p.message_id != id);
    Ok(Reply::Data(json!({})))
}

pub(super) fn list_pins(call: &mut Call, world: &mut World) -> Result<Reply, ApiError> {
    let chat_id = call.required_query("chat_id")?.to_string();
    let start = time_query(call, "start_time")?;
    let end = time_query(call, "end_time")?;
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        return Err(invalid_content("end_time must be greater than start_time."));
    }
    let page = call.page(
        20,
        50,
        &format!(
            "{chat_id}|{}|{}",
            start.unwrap_or(0),
            end.unwrap_or(u64::MAX)
        ),
    )?;
    bot_check(world)?;
    let chat = world
        .chat(&chat_id)
        .ok_or_else(|| err(codes::PIN_CHAT_NOT_EXIST, "The chat not exist."))?;
    if chat.dissolved {
        return Err(dissolved());
    }
    if !world.caller_in_chat(chat) {
        return Err(bot_not_in_chat());
    }
    let mut found: Vec<&Pin> = world
        .pins
        .iter()
        .filter(|p| p.chat_id == chat_id)
        .filter(|p| {
            start.is_none_or(|s| p.create_time_ms >= s) && end.is_none_or(|e| p.create_time_ms <= e)
        })
        .collect();
    // Newest pin first.
    found.sort_by_key(|p| std::cmp::Reverse(p.create_time_ms));
    let items: Vec<Value> = found.into_iter().map(pin_json).collect();
    Ok(Reply::Data(page.slice(&items).into_data("items")))
}
