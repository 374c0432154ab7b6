//! Diesel's view of the tables in `migrations/`. Written by hand (diesel_cli would need the
//! C client libraries); `tests/schema.rs` checks it against every backend's migrated database.

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
        safe_name -> Text,
        email -> Text,
        password_bcrypt -> Text,
        privileges -> Integer,
        country -> Text,
        silence_end -> BigInt,
        created_at -> BigInt,
        last_seen -> BigInt,
    }
}

diesel::table! {
    stats (user_id, mode) {
        user_id -> Integer,
        mode -> SmallInt,
        total_score -> BigInt,
        ranked_score -> BigInt,
        pp -> Integer,
        accuracy -> Float,
        playcount -> Integer,
        playtime -> Integer,
        max_combo -> Integer,
        total_hits -> Integer,
        xh_count -> Integer,
        x_count -> Integer,
        sh_count -> Integer,
        s_count -> Integer,
        a_count -> Integer,
    }
}

diesel::table! {
    relationships (user_id, target_id) {
        user_id -> Integer,
        target_id -> Integer,
        kind -> SmallInt,
    }
}

diesel::table! {
    channels (name) {
        name -> Text,
        topic -> Text,
        read_privileges -> Integer,
        write_privileges -> Integer,
        auto_join -> Bool,
    }
}

diesel::table! {
    mail (id) {
        id -> Integer,
        from_id -> Integer,
        to_id -> Integer,
        body -> Text,
        sent_at -> BigInt,
        delivered -> Bool,
    }
}

diesel::table! {
    logins (id) {
        id -> Integer,
        user_id -> Integer,
        ip -> Text,
        client_version -> Text,
        client_hashes -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    match_games (id) {
        id -> Integer,
        match_id -> Integer,
        match_name -> Text,
        beatmap_id -> Integer,
        beatmap_md5 -> Text,
        beatmap_name -> Text,
        mode -> SmallInt,
        mods -> Integer,
        win_condition -> SmallInt,
        team_type -> SmallInt,
        freemod -> Bool,
        aborted -> Bool,
        started_at -> BigInt,
        ended_at -> BigInt,
    }
}

diesel::table! {
    match_scores (game_id, user_id) {
        game_id -> Integer,
        user_id -> Integer,
        slot -> SmallInt,
        team -> SmallInt,
        mods -> Integer,
        score -> Integer,
        max_combo -> Integer,
        count_300 -> Integer,
        count_100 -> Integer,
        count_50 -> Integer,
        count_geki -> Integer,
        count_katu -> Integer,
        count_miss -> Integer,
        passed -> Bool,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Integer,
        actor_id -> Integer,
        target_id -> Nullable<Integer>,
        action -> Text,
        reason -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (user_id) {
        user_id -> Integer,
        session_id -> BigInt,
        utc_offset -> SmallInt,
        block_non_friend_dms -> Bool,
        channels -> Text,
        created_at -> BigInt,
        refreshed_at -> BigInt,
    }
}

diesel::table! {
    beatmaps (md5) {
        md5 -> Text,
        id -> Integer,
        set_id -> Integer,
        status -> SmallInt,
        status_frozen -> Bool,
        mode -> SmallInt,
        artist -> Text,
        title -> Text,
        version -> Text,
        creator -> Text,
        file_name -> Text,
        total_length -> Integer,
        max_combo -> Integer,
        stars -> Float,
        plays -> Integer,
        passes -> Integer,
        source -> SmallInt,
        approved_at -> BigInt,
        fetched_at -> BigInt,
    }
}

diesel::table! {
    beatmap_misses (lookup) {
        lookup -> Text,
        checked_at -> BigInt,
    }
}

diesel::table! {
    scores (id) {
        id -> Integer,
        user_id -> Integer,
        beatmap_md5 -> Text,
        mode -> SmallInt,
        board -> SmallInt,
        score -> BigInt,
        pp -> Float,
        accuracy -> Float,
        max_combo -> Integer,
        mods -> Integer,
        count_300 -> Integer,
        count_100 -> Integer,
        count_50 -> Integer,
        count_geki -> Integer,
        count_katu -> Integer,
        count_miss -> Integer,
        grade -> Text,
        perfect -> Bool,
        status -> SmallInt,
        online_checksum -> Text,
        play_time -> Integer,
        client_flags -> Integer,
        replay_views -> Integer,
        submitted_at -> BigInt,
        reply -> Text,
    }
}

diesel::table! {
    beatmap_ratings (user_id, beatmap_md5) {
        user_id -> Integer,
        beatmap_md5 -> Text,
        rating -> SmallInt,
        rated_at -> BigInt,
    }
}

diesel::table! {
    favourites (user_id, set_id) {
        user_id -> Integer,
        set_id -> Integer,
        added_at -> BigInt,
    }
}

diesel::table! {
    comments (id) {
        id -> Integer,
        user_id -> Integer,
        target_kind -> SmallInt,
        target_id -> Integer,
        song_time -> Integer,
        colour -> Text,
        body -> Text,
        posted_at -> BigInt,
    }
}

diesel::table! {
    client_reports (id) {
        id -> Integer,
        user_id -> Nullable<Integer>,
        kind -> SmallInt,
        flags -> Integer,
        client_version -> Text,
        detail -> Text,
        reported_at -> BigInt,
    }
}

diesel::table! {
    screenshots (id) {
        id -> Text,
        user_id -> Integer,
        format -> Text,
        size_bytes -> Integer,
        created_at -> BigInt,
    }
}

diesel::table! {
    beatmap_status_overrides (scope, target_id) {
        scope -> SmallInt,
        target_id -> Integer,
        status -> SmallInt,
        set_by -> Integer,
        set_at -> BigInt,
    }
}

diesel::table! {
    recalc_jobs (id) {
        id -> Integer,
        mode -> SmallInt,
        beatmap_md5 -> Text,
        user_id -> Integer,
        max_score_id -> Integer,
        total -> BigInt,
        created_at -> BigInt,
        finished_at -> BigInt,
    }
}

diesel::table! {
    recalc_shards (job_id, shard) {
        job_id -> Integer,
        shard -> Integer,
        last_user_id -> Integer,
        last_score_id -> Integer,
        done -> BigInt,
        finished -> Bool,
        updated_at -> BigInt,
    }
}

diesel::table! {
    recalc_nodes (job_id, node) {
        job_id -> Integer,
        node -> Text,
        done -> BigInt,
        run_started_at -> BigInt,
        run_done -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(stats -> users (user_id));
diesel::joinable!(screenshots -> users (user_id));
diesel::joinable!(scores -> users (user_id));
diesel::joinable!(match_scores -> match_games (game_id));
diesel::joinable!(logins -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(comments -> users (user_id));
diesel::joinable!(recalc_shards -> recalc_jobs (job_id));
diesel::joinable!(recalc_nodes -> recalc_jobs (job_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    stats,
    relationships,
    channels,
    mail,
    logins,
    match_games,
    match_scores,
    audit_log,
    sessions,
    beatmaps,
    beatmap_misses,
    scores,
    beatmap_ratings,
    favourites,
    comments,
    client_reports,
    screenshots,
    beatmap_status_overrides,
    recalc_jobs,
    recalc_shards,
    recalc_nodes,
);
