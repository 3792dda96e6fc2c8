//! The center's messages (field errors, refusals), which are written in English for the
//! API, in Japanese for the pages: each known message shape has its Japanese form, with
//! the numbers and names it carries; a message of an unknown shape stays as it is.

/// The numbers in `s`, in order.
fn numbers(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `s` in Japanese, when its shape is known.
pub fn ja(s: &str) -> Option<String> {
    let n = numbers(s);
    let exact = match s {
        "is required" => "入力してください",
        "is empty" => "入力してください",
        "must be in the future" => "未来の日時にしてください",
        "must be a four-digit year" => "4桁の年にしてください",
        "must be a month from 1 to 12" => "1〜12の月にしてください",
        "must be a whole number of slots" => "枠数を整数で入力してください",
        "the card has expired" => "カードの有効期限が切れています",
        "is not a valid card number (check digit)" => "カード番号が正しくありません",
        "must not start or end with spaces or contain control characters" => {
            "前後の空白や制御文字は使えません"
        }
        "contains control characters" => "制御文字が含まれています",
        "only password and secret programs take a viewer password" => {
            "視聴パスワードは「パスワード」「シークレット」の番組だけで使えます"
        }
        "cannot be changed; cancel and book again" => {
            "変更できません。取り消して予約し直してください"
        }
        "premium members need a payment card" => "プレミアム会員にはカードが必要です",
        "only premium members give a payment card" => "カードはプレミアム会員だけが登録します",
        "must be general or premium" => "一般会員かプレミアム会員を選んでください",
        "needs an @ between name and domain" => "@ を含むメールアドレスにしてください",
        "needs a domain such as example.org after the @" => {
            "@ の後に example.org のようなドメインが必要です"
        }
        "has characters or dots not allowed before the @" => "@ の前に使えない文字や点があります",
        "needs a name of 1 to 64 characters before the @" => "@ の前は1〜64文字にしてください",
        "is longer than 254 characters" => "254文字までにしてください",
        "wrong e-mail address or password" => "メールアドレスまたはパスワードが違います",
        "the current password is not right" => "現在のパスワードが違います",
        "too many wrong passwords; wait and try again" => {
            "パスワードの誤りが多すぎます。しばらくしてからお試しください"
        }
        "this e-mail address is already registered" => "このメールアドレスは登録済みです",
        "only premium members can book airtime" => "配信枠の予約はプレミアム会員だけができます",
        "no such channel; see GET /api/v1/channels" => "そのチャンネルはありません",
        "that message is not one that failed" => "そのメールは失敗したものではありません",
        "the following slots are already booked" => "次の枠はすでに予約されています",
        "must be a whole number" => "整数にしてください",
        _ => "",
    };
    if !exact.is_empty() {
        return Some(exact.to_owned());
    }
    let out = if s.starts_with("is too long (max ") {
        format!("長すぎます（{}文字まで）", n.first()?)
    } else if s.starts_with("must be ") && s.ends_with(" characters") && n.len() == 2 {
        format!("{}〜{}文字にしてください", n[0], n[1])
    } else if s.starts_with("must be ") && s.ends_with(" digits") && n.len() == 2 {
        format!("{}〜{}桁の数字にしてください", n[0], n[1])
    } else if s.starts_with("must be a whole number") {
        "整数にしてください".to_owned()
    } else if s.starts_with("is required for ") {
        "この公開レベルでは必須です".to_owned()
    } else if s.starts_with("must be on a ") {
        format!("{}分単位の時刻にしてください", n.first()?)
    } else if s.starts_with("must be an http:// or https:// address") {
        "http:// または https:// で始まる、空白のないアドレスにしてください".to_owned()
    } else if s.starts_with("must be a date and time") {
        "日時の形式が正しくありません".to_owned()
    } else if s.starts_with("must be one of: ") {
        format!(
            "次のいずれかにしてください：{}",
            s.trim_start_matches("must be one of: ")
        )
    } else if s.starts_with("contains an invisible or direction-changing character") {
        let code = s.split(['(', ')']).nth(1)?;
        format!(
            "見えない文字または表示方向を変える文字（{code}）が含まれています。削除してください"
        )
    } else if s.starts_with("at most ") && s.contains(" invitees") {
        format!("招待できるのは{}人までです", n.first()?)
    } else if s.starts_with("is beyond the booking horizon") {
        format!("予約できるのは{}日先までです", n.first()?)
    } else if s.starts_with("the reservation key is not valid for this reservation") {
        match n.first() {
            Some(left) => format!("予約キーが正しくありません（残り{left}回）"),
            None => "予約キーが正しくありません".to_owned(),
        }
    } else if s.starts_with("too many wrong keys") {
        "予約キーの誤りが多すぎます。しばらくしてからお試しください".to_owned()
    } else if s.starts_with("too many failed sign-ins") || s.starts_with("too many sign-ups") {
        format!(
            "試行が多すぎます。{}秒後にもう一度お試しください",
            n.first()?
        )
    } else if s.starts_with("monthly quota exceeded") {
        format!("今月の予約上限を超えます（残り{}枠）", n.last()?)
    } else if s.starts_with("the slot at ") && s.ends_with(" is already booked") {
        "その枠はすでに予約されています".to_owned()
    } else if s.starts_with("the confirmation deadline ") {
        "再確認の期限を過ぎました".to_owned()
    } else if s.starts_with("the program ended at ") {
        "番組は終了しています".to_owned()
    } else if s.starts_with("cannot ") && s.contains(" a reservation that is ") {
        "この予約の状態ではできません".to_owned()
    } else if s.starts_with("a channel named ") {
        "その名前のチャンネルはすでにあります".to_owned()
    } else if s.starts_with("extensions are offered from ") {
        "延長はまだ受け付けていません".to_owned()
    } else if s.starts_with("a reservation may hold 1 to ") {
        format!("1つの予約は1〜{}枠までです", n.get(1)?)
    } else if s.contains("has") && s.contains("not one to waive") {
        "免除できる課金がありません".to_owned()
    } else if s.starts_with("must be ") && n.len() == 2 && s.split_whitespace().count() <= 6 {
        format!("{}〜{}にしてください", n[0], n[1])
    } else {
        return None;
    };
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::ja;

    #[test]
    fn known_shapes_read_in_japanese_with_their_numbers() {
        assert_eq!(ja("is required").unwrap(), "入力してください");
        assert_eq!(
            ja("is too long (max 60 characters)").unwrap(),
            "長すぎます（60文字まで）"
        );
        assert_eq!(
            ja("must be 10 to 256 characters").unwrap(),
            "10〜256文字にしてください"
        );
        assert_eq!(
            ja("must be 12 to 19 digits").unwrap(),
            "12〜19桁の数字にしてください"
        );
        assert_eq!(
            ja("must be between 1 and 12").unwrap(),
            "1〜12にしてください"
        );
        assert_eq!(
            ja("the reservation key is not valid for this reservation (4 tries left)").unwrap(),
            "予約キーが正しくありません（残り4回）"
        );
        assert_eq!(
            ja("monthly quota exceeded for 2026-06: 3 slots requested, 29 of 30 already used, 1 left")
                .unwrap(),
            "今月の予約上限を超えます（残り1枠）"
        );
        assert_eq!(
            ja("contains an invisible or direction-changing character (U+202E); remove it")
                .unwrap(),
            "見えない文字または表示方向を変える文字（U+202E）が含まれています。削除してください"
        );
        assert_eq!(ja("something nobody wrote a translation for"), None);
    }
}
