//! diesel table definitions, written to match `migrations/`.
#![allow(missing_docs)]

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Nullable<Text>,
        display_name -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        is_system -> Bool,
        token_epoch -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        prefix -> Text,
        secret_hash -> Binary,
        epoch -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        can_create_keys -> Bool,
    }
}

diesel::table! {
    user_sessions (id) {
        id -> Text,
        user_id -> Text,
        epoch -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        last_seen_at -> BigInt,
        client_addr -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        locked_until -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        actor_id -> Nullable<Text>,
        actor -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        client_addr -> Nullable<Text>,
        details -> Nullable<Text>,
        repeats -> BigInt,
        last_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    usage_records (id) {
        id -> BigInt,
        at -> BigInt,
        user_id -> Nullable<Text>,
        api_key_id -> Nullable<Text>,
        model -> Text,
        endpoint -> Text,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        duration_ms -> BigInt,
    }
}

diesel::table! {
    benchmark_runs (id) {
        id -> Text,
        at -> BigInt,
        user_id -> Nullable<Text>,
        model -> Text,
        prompt_tokens -> BigInt,
        generated_tokens -> BigInt,
        prompt_tps -> Double,
        decode_tps -> Double,
        ttft_ms -> Double,
        cpu -> Text,
        threads -> BigInt,
        simd -> Text,
    }
}

diesel::table! {
    presets (id) {
        id -> Text,
        owner_id -> Text,
        name -> Text,
        system_prompt -> Text,
        model -> Nullable<Text>,
        temperature -> Nullable<Double>,
        top_p -> Nullable<Double>,
        max_tokens -> Nullable<BigInt>,
        is_public -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    chat_sessions (id) {
        id -> Text,
        owner_id -> Text,
        title -> Text,
        model -> Nullable<Text>,
        preset_id -> Nullable<Text>,
        message_count -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    chat_messages (id) {
        id -> BigInt,
        session_id -> Text,
        role -> Text,
        content -> Text,
        created_at -> BigInt,
        model -> Nullable<Text>,
        prompt_tokens -> Nullable<BigInt>,
        completion_tokens -> Nullable<BigInt>,
        citations -> Nullable<Text>,
        interrupted -> Bool,
    }
}

diesel::table! {
    grants (resource_type, resource_id, user_id) {
        resource_type -> Text,
        resource_id -> Text,
        user_id -> Text,
        level -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    quota_overrides (user_id) {
        user_id -> Text,
        requests_per_minute -> Nullable<BigInt>,
        tokens_per_day -> Nullable<BigInt>,
        max_concurrent -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    quota_requests (id) {
        id -> BigInt,
        subject -> Text,
        at_ms -> BigInt,
    }
}

diesel::table! {
    quota_tokens (subject, day) {
        subject -> Text,
        day -> BigInt,
        tokens -> BigInt,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        code_hash -> Binary,
        role -> Text,
        note -> Nullable<Text>,
        created_by -> Nullable<Text>,
        created_by_name -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        used_by -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    rag_collections (id) {
        id -> Text,
        owner_id -> Text,
        name -> Text,
        description -> Text,
        document_count -> BigInt,
        chunk_count -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    rag_documents (id) {
        id -> Text,
        collection_id -> Text,
        name -> Text,
        content_type -> Text,
        bytes -> BigInt,
        status -> Text,
        error -> Nullable<Text>,
        chunks -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    rag_chunks (id) {
        id -> BigInt,
        document_id -> Text,
        collection_id -> Text,
        chunk_index -> BigInt,
        text -> Text,
        embedding -> Binary,
    }
}

diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(rag_collections -> users (owner_id));
diesel::joinable!(rag_documents -> rag_collections (collection_id));
diesel::joinable!(rag_chunks -> rag_documents (document_id));
diesel::joinable!(user_sessions -> users (user_id));
diesel::joinable!(chat_sessions -> users (owner_id));
diesel::joinable!(presets -> users (owner_id));
diesel::joinable!(chat_messages -> chat_sessions (session_id));
diesel::joinable!(grants -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    api_keys,
    user_sessions,
    login_throttle,
    audit_log,
    presets,
    chat_sessions,
    chat_messages,
    grants,
    quota_overrides,
    quota_requests,
    quota_tokens,
    invitations,
    rag_collections,
    rag_documents,
    rag_chunks
);
