//! A large, realistic org for the sandbox, generated from word lists: departments in a tree
//! under a handful of divisions, people with Chinese names weighted like real surname
//! frequency (so common names such as 张伟 and 王芳 repeat), a few international staff,
//! user groups and group chats. The app and its scopes are the default seed's, so the
//! same credentials work; the contact range is the whole org.
//!
//! Deterministic: the same arguments give a byte-identical seed on any platform (integer
//! arithmetic only, one seeded `fastrand::Rng`, no hash-map iteration order in the output).
//! `lark-mcp-server sandbox-seed` prints one as JSON.

use std::collections::{HashMap, HashSet};

use super::seed::{
    ChatSeed, ContactRangeSeed, DEFAULT_SEED_JSON, DepartmentSeed, GroupSeed, Seed, UserSeed,
    UserStatusSeed,
};

/// The mail domain of generated people (the default seed's).
pub const MAIL_DOMAIN: &str = "northwind.example";

/// Most group chats generated (fewer for small orgs: one per five people).
pub const MAX_CHATS: usize = 200;

/// Largest generated chat (and department chat).
const CHAT_MAX_MEMBERS: usize = 50;

/// A generated org of `people` users in `departments` departments (at least one).
pub fn generate(people: usize, departments: usize, rng_seed: u64) -> Seed {
    // The built-in seed is a compile-time constant that every test run parses; it is not
    // input, so failing to parse it is a bug in the binary, not a user error.
    let base: Seed =
        serde_json::from_str(DEFAULT_SEED_JSON).expect("the built-in default seed parses");
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(rng_seed),
        ids: HashSet::new(),
    };
    let mut org = Org::default();
    g.departments(&mut org, departments.max(1));
    g.people(&mut org, people);
    let groups = g.groups(&org);
    let chats = g.chats(&mut org);
    Seed {
        app: base.app,
        scopes: base.scopes,
        contact_range: ContactRangeSeed {
            all: true,
            ..ContactRangeSeed::default()
        },
        departments: org.depts.into_iter().map(|d| d.seed).collect(),
        users: org.people.into_iter().map(|p| p.user).collect(),
        groups,
        chats,
        messages: Vec::new(),
    }
}

// ---- word lists -------------------------------------------------------------------------

/// A top-level division: its sub-department names, job titles and relative size.
struct Division {
    name: (&'static str, &'static str),
    head_title: &'static str,
    /// Second-level departments (names end in 部 or 中心).
    units: &'static [(&'static str, &'static str)],
    /// Deeper teams (names end in 组).
    teams: &'static [(&'static str, &'static str)],
    titles: &'static [&'static str],
    /// Relative share of the sub-departments.
    size: u32,
}

/// In the order divisions are created: a small org gets the first few.
#[rustfmt::skip]
const DIVISIONS: &[Division] = &[
    Division {
        name: ("总裁办", "CEO Office"),
        head_title: "首席执行官 CEO",
        units: &[
            ("战略部", "Strategy"), ("投资者关系部", "Investor Relations"), ("公共事务部", "Public Affairs"),
            ("董事会办公室", "Board Office"),
        ],
        teams: &[
            ("战略分析组", "Strategic Analysis"), ("政府关系组", "Government Relations"), ("企业发展组", "Corporate Development"),
        ],
        titles: &[
            "总裁助理 Chief of Staff", "战略分析师 Strategy Analyst", "行政助理 Executive Assistant",
            "投资者关系经理 IR Manager",
        ],
        size: 2,
    },
    Division {
        name: ("研发中心", "R&D Center"),
        head_title: "首席技术官 CTO",
        units: &[
            ("平台工程部", "Platform Engineering"), ("基础设施部", "Infrastructure"), ("数据平台部", "Data Platform"),
            ("机器人平台部", "Robotics Platform"), ("质量保障部", "Quality Assurance"), ("安全工程部", "Security Engineering"),
            ("移动开发部", "Mobile Development"), ("算法研究中心", "Algorithm Research"), ("前端技术部", "Frontend Engineering"),
            ("硬件工程部", "Hardware Engineering"),
        ],
        teams: &[
            ("感知组", "Perception"), ("运动控制组", "Motion Control"), ("后端组", "Backend"),
            ("前端组", "Frontend"), ("测试组", "QA"), ("运维组", "Operations"),
            ("存储组", "Storage"), ("网络组", "Networking"), ("计算组", "Compute"),
            ("数据仓库组", "Data Warehouse"), ("推荐算法组", "Recommendation"), ("搜索组", "Search"),
            ("客户端组", "Client"), ("嵌入式组", "Embedded"), ("仿真组", "Simulation"),
            ("地图组", "Mapping"), ("路径规划组", "Path Planning"), ("工具链组", "Toolchain"),
            ("可观测性组", "Observability"), ("发布工程组", "Release Engineering"), ("身份认证组", "Identity"),
            ("应用安全组", "Application Security"),
        ],
        titles: &[
            "后端工程师 Backend Engineer", "前端工程师 Frontend Engineer", "高级软件工程师 Senior Software Engineer",
            "软件工程师 Software Engineer", "测试工程师 QA Engineer", "算法工程师 Algorithm Engineer",
            "机器学习工程师 Machine Learning Engineer", "数据工程师 Data Engineer", "站点可靠性工程师 SRE",
            "DevOps 工程师 DevOps Engineer", "嵌入式工程师 Embedded Engineer", "安全工程师 Security Engineer",
            "移动端工程师 Mobile Engineer", "技术项目经理 TPM", "架构师 Software Architect",
            "研发实习生 Engineering Intern", "硬件工程师 Hardware Engineer", "机器人工程师 Robotics Engineer",
        ],
        size: 40,
    },
    Division {
        name: ("销售与市场", "Sales & Marketing"),
        head_title: "销售副总裁 VP of Sales",
        units: &[
            ("华东销售部", "East China Sales"), ("华南销售部", "South China Sales"), ("华北销售部", "North China Sales"),
            ("西南销售部", "Southwest China Sales"), ("海外业务部", "International Business"), ("市场部", "Marketing"),
            ("渠道合作部", "Channel Partnerships"), ("大客户部", "Key Accounts"),
        ],
        teams: &[
            ("企业客户组", "Enterprise Accounts"), ("中小客户组", "SMB Accounts"), ("渠道组", "Channel"),
            ("品牌组", "Brand"), ("内容营销组", "Content Marketing"), ("活动组", "Events"),
            ("增长营销组", "Growth Marketing"), ("售前组", "Presales"), ("商务拓展组", "Business Development"),
            ("公关组", "Public Relations"),
        ],
        titles: &[
            "客户经理 Account Manager", "销售代表 Sales Representative", "大客户经理 Key Account Manager",
            "售前工程师 Presales Engineer", "市场经理 Marketing Manager", "内容营销经理 Content Marketing Manager",
            "品牌经理 Brand Manager", "商务拓展经理 Business Development Manager", "渠道经理 Channel Manager",
            "销售运营 Sales Operations",
        ],
        size: 18,
    },
    Division {
        name: ("产品与设计", "Product & Design"),
        head_title: "产品副总裁 VP of Product",
        units: &[
            ("产品规划部", "Product Planning"), ("用户体验部", "User Experience"), ("设计中心", "Design Center"),
            ("用户研究部", "User Research"),
        ],
        teams: &[
            ("交互设计组", "Interaction Design"), ("视觉设计组", "Visual Design"), ("增长产品组", "Growth Product"),
            ("平台产品组", "Platform Product"), ("商业化产品组", "Monetization"), ("数据产品组", "Data Product"),
        ],
        titles: &[
            "产品经理 Product Manager", "高级产品经理 Senior Product Manager", "交互设计师 UX Designer",
            "视觉设计师 UI Designer", "用户研究员 UX Researcher", "产品运营 Product Operations",
            "数据分析师 Data Analyst",
        ],
        size: 10,
    },
    Division {
        name: ("客户成功", "Customer Success"),
        head_title: "客户成功副总裁 VP of Customer Success",
        units: &[
            ("技术支持部", "Technical Support"), ("客户服务部", "Customer Service"), ("实施交付部", "Implementation"),
            ("培训中心", "Training Center"),
        ],
        teams: &[
            ("一线支持组", "Tier 1 Support"), ("二线支持组", "Tier 2 Support"), ("交付组", "Delivery"),
            ("客户培训组", "Customer Training"), ("续约组", "Renewals"),
        ],
        titles: &[
            "客户成功经理 Customer Success Manager", "技术支持工程师 Support Engineer", "实施顾问 Implementation Consultant",
            "客服专员 Customer Service Specialist", "培训讲师 Trainer",
        ],
        size: 10,
    },
    Division {
        name: ("人力资源", "Human Resources"),
        head_title: "人力资源总监 HR Director",
        units: &[
            ("招聘部", "Talent Acquisition"), ("薪酬福利部", "Compensation & Benefits"), ("组织发展部", "Organization Development"),
            ("人力资源业务伙伴部", "HR Business Partners"),
        ],
        teams: &[
            ("校园招聘组", "Campus Recruiting"), ("社会招聘组", "Experienced Hiring"), ("员工关系组", "Employee Relations"),
            ("培训发展组", "Learning & Development"),
        ],
        titles: &[
            "招聘经理 Recruiter", "HRBP", "薪酬专员 Compensation Specialist",
            "培训经理 L&D Manager", "员工关系专员 Employee Relations Specialist",
        ],
        size: 4,
    },
    Division {
        name: ("财务部", "Finance"),
        head_title: "首席财务官 CFO",
        units: &[
            ("会计部", "Accounting"), ("财务规划与分析部", "FP&A"), ("税务部", "Tax"),
            ("资金部", "Treasury"),
        ],
        teams: &[
            ("应收组", "Accounts Receivable"), ("应付组", "Accounts Payable"), ("总账组", "General Ledger"),
            ("预算组", "Budgeting"),
        ],
        titles: &[
            "会计 Accountant", "财务分析师 Financial Analyst", "税务经理 Tax Manager",
            "出纳 Cashier", "内审专员 Internal Auditor",
        ],
        size: 4,
    },
    Division {
        name: ("供应链与制造", "Supply Chain & Manufacturing"),
        head_title: "供应链副总裁 VP of Supply Chain",
        units: &[
            ("采购部", "Procurement"), ("生产制造部", "Manufacturing"), ("物流部", "Logistics"),
            ("质量管理部", "Quality Management"),
        ],
        teams: &[
            ("装配组", "Assembly"), ("测试验证组", "Test & Validation"), ("仓储组", "Warehousing"),
            ("生产计划组", "Production Planning"), ("供应商管理组", "Supplier Management"),
        ],
        titles: &[
            "采购专员 Buyer", "供应链计划员 Supply Planner", "生产工程师 Manufacturing Engineer",
            "质量工程师 Quality Engineer", "物流专员 Logistics Specialist", "装配技术员 Assembly Technician",
        ],
        size: 12,
    },
    Division {
        name: ("法务与合规", "Legal & Compliance"),
        head_title: "总法律顾问 General Counsel",
        units: &[
            ("法务部", "Legal"), ("合规部", "Compliance"), ("知识产权部", "Intellectual Property"),
            ("数据隐私部", "Data Privacy"),
        ],
        teams: &[
            ("合同组", "Contracts"), ("诉讼组", "Litigation"), ("专利组", "Patents"),
            ("出口管制组", "Export Control"),
        ],
        titles: &[
            "法务专员 Paralegal", "法律顾问 Legal Counsel", "合规经理 Compliance Manager",
            "专利工程师 Patent Engineer", "隐私官 Privacy Officer",
        ],
        size: 2,
    },
    Division {
        name: ("行政与信息技术", "Workplace & IT"),
        head_title: "行政与IT总监 Director of Workplace & IT",
        units: &[
            ("行政部", "Workplace"), ("信息技术部", "IT"), ("企业安全部", "Corporate Security"),
        ],
        teams: &[
            ("桌面支持组", "Desktop Support"), ("办公网络组", "Office Network"), ("前台组", "Front Desk"),
            ("差旅组", "Travel"),
        ],
        titles: &[
            "行政专员 Office Administrator", "IT 支持工程师 IT Support Engineer", "网络管理员 Network Administrator",
            "前台 Receptionist", "差旅专员 Travel Coordinator",
        ],
        size: 4,
    },
];

/// Surnames weighted by real frequency (per ten thousand, rounded).
#[rustfmt::skip]
const SURNAMES: &[(&str, u32)] = &[
    ("王", 710), ("李", 700), ("张", 670), ("刘", 540), ("陈", 460), ("杨", 310), ("黄", 220), ("赵", 200),
    ("吴", 200), ("周", 190), ("徐", 150), ("孙", 150), ("马", 140), ("朱", 130), ("胡", 130), ("郭", 110),
    ("何", 110), ("高", 100), ("林", 100), ("罗", 90), ("郑", 90), ("梁", 80), ("谢", 80), ("宋", 70),
    ("唐", 70), ("许", 60), ("韩", 60), ("冯", 60), ("邓", 60), ("曹", 60), ("彭", 50), ("曾", 50),
    ("肖", 50), ("田", 50), ("董", 50), ("袁", 40), ("潘", 40), ("于", 40), ("蒋", 40), ("蔡", 40),
    ("余", 40), ("杜", 40), ("叶", 40), ("程", 40), ("苏", 30), ("魏", 30), ("吕", 30), ("丁", 30),
    ("任", 30), ("沈", 30), ("姚", 30), ("卢", 30), ("姜", 30), ("崔", 30), ("钟", 30), ("谭", 30),
    ("陆", 30), ("汪", 30), ("范", 30), ("金", 30), ("石", 30), ("廖", 30), ("贾", 30), ("夏", 20),
    ("韦", 20), ("付", 20), ("方", 20), ("白", 20), ("邹", 20), ("孟", 20), ("熊", 20), ("秦", 20),
    ("邱", 20), ("江", 20), ("尹", 20), ("薛", 20), ("闫", 20), ("段", 20), ("雷", 20), ("侯", 20),
    ("龙", 20), ("史", 20), ("陶", 20), ("黎", 20), ("贺", 20), ("顾", 20), ("毛", 20), ("郝", 20),
    ("龚", 20), ("邵", 20), ("万", 20), ("钱", 20), ("严", 20), ("覃", 10), ("武", 20), ("戴", 20),
    ("莫", 10), ("孔", 10), ("向", 10), ("汤", 10), ("欧阳", 4), ("上官", 2), ("诸葛", 2), ("司马", 2),
];

/// Whole given names as common as they are in real life, weighted.
#[rustfmt::skip]
const MALE_COMMON: &[(&str, u32)] = &[
    ("伟", 40), ("强", 22), ("磊", 22), ("军", 20), ("洋", 18), ("勇", 18), ("杰", 16),
    ("涛", 16), ("明", 15), ("超", 15), ("平", 12), ("刚", 12), ("鹏", 10), ("斌", 10),
    ("浩", 10), ("波", 10), ("辉", 10), ("鑫", 8), ("宇", 8), ("帅", 6), ("建国", 6),
    ("建华", 6), ("志强", 8), ("志明", 5), ("俊杰", 6), ("浩然", 6), ("子轩", 5), ("宇航", 4),
];
#[rustfmt::skip]
const FEMALE_COMMON: &[(&str, u32)] = &[
    ("芳", 40), ("娜", 30), ("敏", 28), ("静", 28), ("丽", 25), ("艳", 20), ("娟", 18),
    ("秀英", 16), ("霞", 14), ("桂英", 12), ("婷", 14), ("雪", 12), ("琳", 10), ("颖", 10),
    ("慧", 10), ("玲", 10), ("燕", 10), ("佳", 8), ("欣怡", 8), ("雨涵", 6), ("晓燕", 6),
    ("丽华", 5), ("梓涵", 5), ("诗琪", 4),
];
/// Two-character given names are composed from these.
const MALE_FIRST: &[&str] = &[
    "志", "建", "国", "文", "俊", "浩", "子", "宇", "家", "晓", "明", "天", "博", "嘉", "思", "泽",
    "金", "永", "海", "立", "振", "德", "兴", "宏",
];
const MALE_SECOND: &[&str] = &[
    "强", "华", "明", "军", "杰", "辉", "峰", "涛", "宇", "轩", "然", "博", "航", "龙", "林", "成",
    "飞", "斌", "鹏", "远", "东", "亮", "新", "平",
];
const FEMALE_FIRST: &[&str] = &[
    "晓", "雨", "欣", "思", "佳", "梓", "诗", "子", "雅", "丽", "美", "秀", "婉", "文", "静", "丹",
    "玉", "春",
];
const FEMALE_SECOND: &[&str] = &[
    "怡", "涵", "琪", "萱", "婷", "雯", "颖", "琳", "洁", "慧", "敏", "燕", "丽", "娜", "欣", "悦",
    "月", "倩", "妍", "璐",
];

/// Pinyin of every character in the name lists above (name readings: 曾 zeng, 覃 qin).
#[rustfmt::skip]
const PINYIN: &[(char, &str)] = &[
    ('王', "wang"), ('李', "li"), ('张', "zhang"), ('刘', "liu"), ('陈', "chen"), ('杨', "yang"), ('黄', "huang"), ('赵', "zhao"),
    ('吴', "wu"), ('周', "zhou"), ('徐', "xu"), ('孙', "sun"), ('马', "ma"), ('朱', "zhu"), ('胡', "hu"), ('郭', "guo"),
    ('何', "he"), ('高', "gao"), ('林', "lin"), ('罗', "luo"), ('郑', "zheng"), ('梁', "liang"), ('谢', "xie"), ('宋', "song"),
    ('唐', "tang"), ('许', "xu"), ('韩', "han"), ('冯', "feng"), ('邓', "deng"), ('曹', "cao"), ('彭', "peng"), ('曾', "zeng"),
    ('肖', "xiao"), ('田', "tian"), ('董', "dong"), ('袁', "yuan"), ('潘', "pan"), ('于', "yu"), ('蒋', "jiang"), ('蔡', "cai"),
    ('余', "yu"), ('杜', "du"), ('叶', "ye"), ('程', "cheng"), ('苏', "su"), ('魏', "wei"), ('吕', "lyu"), ('丁', "ding"),
    ('任', "ren"), ('沈', "shen"), ('姚', "yao"), ('卢', "lu"), ('姜', "jiang"), ('崔', "cui"), ('钟', "zhong"), ('谭', "tan"),
    ('陆', "lu"), ('汪', "wang"), ('范', "fan"), ('金', "jin"), ('石', "shi"), ('廖', "liao"), ('贾', "jia"), ('夏', "xia"),
    ('韦', "wei"), ('付', "fu"), ('方', "fang"), ('白', "bai"), ('邹', "zou"), ('孟', "meng"), ('熊', "xiong"), ('秦', "qin"),
    ('邱', "qiu"), ('江', "jiang"), ('尹', "yin"), ('薛', "xue"), ('闫', "yan"), ('段', "duan"), ('雷', "lei"), ('侯', "hou"),
    ('龙', "long"), ('史', "shi"), ('陶', "tao"), ('黎', "li"), ('贺', "he"), ('顾', "gu"), ('毛', "mao"), ('郝', "hao"),
    ('龚', "gong"), ('邵', "shao"), ('万', "wan"), ('钱', "qian"), ('严', "yan"), ('覃', "qin"), ('武', "wu"), ('戴', "dai"),
    ('莫', "mo"), ('孔', "kong"), ('向', "xiang"), ('汤', "tang"), ('欧', "ou"), ('阳', "yang"), ('上', "shang"), ('官', "guan"),
    ('诸', "zhu"), ('葛', "ge"), ('司', "si"), ('伟', "wei"), ('强', "qiang"), ('磊', "lei"), ('军', "jun"), ('洋', "yang"),
    ('勇', "yong"), ('杰', "jie"), ('涛', "tao"), ('明', "ming"), ('超', "chao"), ('平', "ping"), ('刚', "gang"), ('鹏', "peng"),
    ('斌', "bin"), ('浩', "hao"), ('波', "bo"), ('辉', "hui"), ('鑫', "xin"), ('宇', "yu"), ('帅', "shuai"), ('建', "jian"),
    ('国', "guo"), ('华', "hua"), ('志', "zhi"), ('俊', "jun"), ('然', "ran"), ('子', "zi"), ('轩', "xuan"), ('航', "hang"),
    ('文', "wen"), ('家', "jia"), ('晓', "xiao"), ('天', "tian"), ('博', "bo"), ('嘉', "jia"), ('思', "si"), ('泽', "ze"),
    ('永', "yong"), ('海', "hai"), ('立', "li"), ('振', "zhen"), ('德', "de"), ('兴', "xing"), ('宏', "hong"), ('峰', "feng"),
    ('成', "cheng"), ('飞', "fei"), ('远', "yuan"), ('东', "dong"), ('亮', "liang"), ('新', "xin"), ('芳', "fang"), ('娜', "na"),
    ('敏', "min"), ('静', "jing"), ('丽', "li"), ('艳', "yan"), ('娟', "juan"), ('秀', "xiu"), ('英', "ying"), ('霞', "xia"),
    ('桂', "gui"), ('婷', "ting"), ('雪', "xue"), ('琳', "lin"), ('颖', "ying"), ('慧', "hui"), ('玲', "ling"), ('燕', "yan"),
    ('佳', "jia"), ('欣', "xin"), ('怡', "yi"), ('雨', "yu"), ('涵', "han"), ('梓', "zi"), ('诗', "shi"), ('琪', "qi"),
    ('萱', "xuan"), ('雯', "wen"), ('洁', "jie"), ('悦', "yue"), ('月', "yue"), ('倩', "qian"), ('妍', "yan"), ('璐', "lu"),
    ('雅', "ya"), ('美', "mei"), ('婉', "wan"), ('丹', "dan"), ('玉', "yu"), ('春', "chun"),
];

/// English given names some people put in `en_name`.
const WESTERN_MALE: &[&str] = &[
    "Kevin", "Jason", "Eric", "Leo", "Jack", "Tony", "Frank", "Peter", "David", "Michael",
    "Steven", "Andy", "Ray", "Alex", "Sam", "Vincent",
];
const WESTERN_FEMALE: &[&str] = &[
    "Amy", "Grace", "Linda", "Cindy", "Vivian", "Lily", "Emma", "Sophia", "Helen", "Iris", "Joy",
    "Nancy", "Cherry", "Annie", "Stella", "Coco",
];

/// International staff: (given name, gender) and family names, ASCII so addresses are plain.
#[rustfmt::skip]
const INTL_GIVEN: &[(&str, i64)] = &[
    ("Emily", 2), ("Lucas", 1), ("Olivia", 2), ("Daniel", 1), ("Sophie", 2), ("Noah", 1),
    ("Hannah", 2), ("Ethan", 1), ("Mia", 2), ("Liam", 1), ("Chloe", 2), ("Ryan", 1),
    ("Priya", 2), ("Arjun", 1), ("Yuki", 2), ("Kenji", 1), ("Minji", 2), ("Thomas", 1),
];
const INTL_FAMILY: &[&str] = &[
    "Carter",
    "Martin",
    "Bennett",
    "Kim",
    "Tanaka",
    "Sato",
    "Patel",
    "Nguyen",
    "Schmidt",
    "Dubois",
    "Garcia",
    "Lee",
    "Wong",
    "Tan",
    "Smith",
    "Brown",
    "Wilson",
    "Rossi",
    "Silva",
    "Natarajan",
];
/// Cities of international staff with their calling code and local number length.
#[rustfmt::skip]
const INTL_CITIES: &[(&str, &str, usize)] = &[
    ("Singapore", "+65", 8), ("San Jose", "+1408", 7), ("Seattle", "+1206", 7),
    ("Tokyo", "+81", 10), ("Seoul", "+82", 10), ("München", "+49", 11),
];

/// Cities of the Chinese offices (Chinese names, as the default seed), weighted, with
/// their English names for chat titles.
#[rustfmt::skip]
const CITIES: &[(&str, &str, u32)] = &[
    ("深圳", "Shenzhen", 40), ("上海", "Shanghai", 20), ("北京", "Beijing", 12), ("杭州", "Hangzhou", 10),
    ("广州", "Guangzhou", 6), ("成都", "Chengdu", 6), ("武汉", "Wuhan", 4), ("南京", "Nanjing", 3),
    ("西安", "Xi'an", 3), ("苏州", "Suzhou", 2),
];

/// Project code names for chats.
#[rustfmt::skip]
const CODENAMES: &[(&str, &str)] = &[
    ("极光", "Aurora"), ("猎鹰", "Falcon"), ("北极星", "Polaris"), ("凤凰", "Phoenix"), ("星火", "Spark"), ("灯塔", "Lighthouse"),
    ("鲲鹏", "Kunpeng"), ("磐石", "Bedrock"), ("蜂鸟", "Hummingbird"), ("银河", "Galaxy"), ("雪豹", "Snow Leopard"), ("方舟", "Ark"),
    ("指南针", "Compass"), ("火箭", "Rocket"), ("棱镜", "Prism"), ("青鸟", "Bluebird"), ("雷霆", "Thunder"), ("天枢", "Dubhe"),
    ("启明", "Morning Star"), ("白鲸", "Beluga"), ("熊猫", "Panda"), ("朱雀", "Vermilion"), ("长风", "Longwind"), ("破晓", "Daybreak"),
];
/// `{}` is the code name.
#[rustfmt::skip]
const PROJECT_CHATS: &[(&str, &str)] = &[
    ("{}项目组", "Project {}"), ("{}发布", "{} Launch"), ("{}值班", "{} On-call"),
    ("{}复盘", "{} Retro"), ("{}需求评审", "{} PRD Review"), ("{}联调", "{} Integration"),
];
#[rustfmt::skip]
const SOCIAL_CHATS: &[(&str, &str)] = &[
    ("羽毛球", "Badminton"), ("跑步俱乐部", "Running Club"), ("读书会", "Book Club"), ("摄影爱好者", "Photography"),
    ("咖啡闲聊", "Coffee Chat"), ("篮球", "Basketball"), ("桌游", "Board Games"), ("萌宠", "Pets"),
    ("二手交易", "Marketplace"), ("新人报到", "New Joiners"), ("技术分享", "Tech Talks"), ("发布公告", "Launch Announcements"),
];

// ---- generation -------------------------------------------------------------------------

struct Gen {
    rng: fastrand::Rng,
    /// Every id handed out, so none repeats.
    ids: HashSet<String>,
}

struct Dept {
    seed: DepartmentSeed,
    /// 1 for a division.
    depth: usize,
    division: usize,
    parent: Option<usize>,
    children: usize,
    city: &'static str,
}

struct Person {
    user: UserSeed,
    primary: usize,
    leads: Option<usize>,
}

#[derive(Default)]
struct Org {
    depts: Vec<Dept>,
    people: Vec<Person>,
    /// Department index → the people (not resigned) whose primary department is in its subtree.
    subtree: Vec<Vec<usize>>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 2013-01-01 00:00 UTC; join dates run from here for `JOIN_DAYS` days.
const JOIN_START: i64 = 1_356_998_400;
const JOIN_DAYS: i64 = 4_650;

impl Gen {
    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| HEX[self.rng.usize(0..16)] as char)
            .collect()
    }

    fn id(&mut self, prefix: &str, len: usize) -> String {
        loop {
            let id = format!("{prefix}{}", self.hex(len));
            if self.ids.insert(id.clone()) {
                return id;
            }
        }
    }

    fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + self.rng.u8(0..10)))
            .collect()
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        self.rng.u32(0..1000) < per_mille
    }

    fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.usize(0..items.len())]
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut r = self.rng.u32(0..total.max(1));
        for (item, w) in items {
            if r < *w {
                return *item;
            }
            r -= w;
        }
        items[items.len() - 1].0
    }

    fn city(&mut self) -> &'static str {
        let weighted: Vec<(&'static str, u32)> = CITIES.iter().map(|(c, _, w)| (*c, *w)).collect();
        self.weighted(&weighted)
    }

    // ---- departments --------------------------------------------------------------------

    fn departments(&mut self, org: &mut Org, total: usize) {
        // A handful of divisions: 3 for a tiny org, up to all of them for a large one.
        let top = (3 + total / 60).min(DIVISIONS.len()).min(total);
        let mut names = Names::default();
        for (i, div) in DIVISIONS.iter().take(top).enumerate() {
            let city = if i == 0 || self.chance(800) {
                "深圳"
            } else {
                self.city()
            };
            let (zh, en) = names.unique(div.name.0, div.name.1);
            self.add_dept(org, zh, en, None, i, city);
        }
        // The rest split by division size (largest remainder), each as a tree of 2-4
        // levels below its division.
        let rest = total - top;
        let weights: Vec<u64> = DIVISIONS[..top].iter().map(|d| d.size as u64).collect();
        for (i, budget) in split(rest, &weights).into_iter().enumerate() {
            self.division_tree(org, &mut names, i, budget);
        }
    }

    fn division_tree(&mut self, org: &mut Org, names: &mut Names, division: usize, budget: usize) {
        let div = &DIVISIONS[division];
        let levels = self.rng.usize(2..=4);
        // Parent picks: the division counts three times, so it gets a real set of units.
        let mut parents = vec![division; 3];
        let mut units = div.units.to_vec();
        self.rng.shuffle(&mut units);
        let mut teams = div.teams.to_vec();
        self.rng.shuffle(&mut teams);
        let (mut next_unit, mut next_team) = (0, 0);
        for _ in 0..budget {
            let parent = self.choose(&parents);
            let depth = org.depts[parent].depth + 1;
            let (zh, en) = if depth == 2 {
                next_unit += 1;
                units[(next_unit - 1) % units.len()]
            } else {
                next_team += 1;
                teams[(next_team - 1) % teams.len()]
            };
            let (zh, en) = names.unique(zh, en);
            let city = if self.chance(if depth == 2 { 700 } else { 850 }) {
                org.depts[parent].city
            } else {
                self.city()
            };
            let idx = self.add_dept(org, zh, en, Some(parent), division, city);
            if depth <= levels {
                parents.push(idx);
            }
        }
    }

    fn add_dept(
        &mut self,
        org: &mut Org,
        name: String,
        en_name: String,
        parent: Option<usize>,
        division: usize,
        city: &'static str,
    ) -> usize {
        let idx = org.depts.len();
        let depth = parent.map_or(1, |p| org.depts[p].depth + 1);
        let parent_id = match parent {
            Some(p) => {
                org.depts[p].children += 1;
                org.depts[p].seed.open_department_id.clone()
            }
            None => "0".to_string(),
        };
        let seed = DepartmentSeed {
            open_department_id: self.id("od-", 32),
            department_id: format!("D{:04}", idx + 1),
            name,
            en_name: Some(en_name),
            parent: parent_id,
            leader: None,
            chat_id: None,
            order: (idx as i64 + 1) * 10,
        };
        org.depts.push(Dept {
            seed,
            depth,
            division,
            parent,
            children: 0,
            city,
        });
        idx
    }

    // ---- people ---------------------------------------------------------------------------

    fn people(&mut self, org: &mut Org, count: usize) {
        let n_depts = org.depts.len();
        // Teams (leaves) carry the headcount, some much more than others; departments with
        // sub-departments hold their managers and a few staff.
        let weights: Vec<u64> = org
            .depts
            .iter()
            .map(|d| {
                if d.children > 0 {
                    1
                } else if self.chance(150) {
                    self.rng.u64(2..=10) * self.rng.u64(2..=5)
                } else {
                    self.rng.u64(2..=10)
                }
            })
            .collect();
        let mut cumulative = Vec::with_capacity(n_depts);
        let mut total = 0u64;
        for w in &weights {
            total += w;
            cumulative.push(total);
        }
        let mut emails: HashMap<String, usize> = HashMap::new();
        let mut mobiles: HashSet<String> = HashSet::new();
        let mut leaders: Vec<Option<usize>> = vec![None; n_depts];
        for i in 0..count {
            // The first person of each department leads it (the first of all is the CEO).
            let leads = (i < n_depts).then_some(i);
            let primary = match leads {
                Some(d) => d,
                None => {
                    let r = self.rng.u64(0..total.max(1));
                    cumulative.partition_point(|c| *c <= r).min(n_depts - 1)
                }
            };
            let person = self.person(org, primary, leads, &mut emails, &mut mobiles);
            if let Some(d) = leads {
                leaders[d] = Some(i);
            }
            org.people.push(person);
        }
        // Every staffed department names its leader.
        for (d, leader) in leaders.iter().enumerate() {
            if let Some(p) = leader {
                org.depts[d].seed.leader = Some(org.people[*p].user.open_id.clone());
            }
        }
        // Each person reports to the nearest leader above them.
        for i in 0..org.people.len() {
            let mut cur = match org.people[i].leads {
                Some(d) => org.depts[d].parent,
                None => Some(org.people[i].primary),
            };
            let mut leader = None;
            while let Some(d) = cur {
                if let Some(l) = &org.depts[d].seed.leader
                    && *l != org.people[i].user.open_id
                {
                    leader = Some(l.clone());
                    break;
                }
                cur = org.depts[d].parent;
            }
            org.people[i].user.leader = leader;
        }
        // Employee numbers follow join order.
        let mut by_join: Vec<usize> = (0..org.people.len()).collect();
        by_join.sort_by_key(|i| (org.people[*i].user.join_time, *i));
        for (rank, i) in by_join.into_iter().enumerate() {
            org.people[i].user.employee_no = Some(format!("NW{:05}", rank + 1));
        }
        // The CEO and one IT administrator manage the tenant.
        if let Some(ceo) = org.people.first_mut() {
            ceo.user.is_tenant_manager = true;
        }
        let admins: Vec<usize> = (0..org.people.len())
            .filter(|i| {
                let p = &org.people[*i];
                p.leads.is_none() && p.user.status == UserStatusSeed::Active
            })
            .collect();
        if !admins.is_empty() {
            let a = self.choose(&admins);
            let admin = &mut org.people[a].user;
            admin.is_tenant_manager = true;
            admin.job_title = Some("系统管理员 IT Administrator".into());
        }
        // Who is in each department's subtree (for chats).
        org.subtree = vec![Vec::new(); n_depts];
        for (i, p) in org.people.iter().enumerate() {
            if p.user.status == UserStatusSeed::Resigned {
                continue;
            }
            let mut cur = Some(p.primary);
            while let Some(d) = cur {
                org.subtree[d].push(i);
                cur = org.depts[d].parent;
            }
        }
    }

    fn person(
        &mut self,
        org: &Org,
        primary: usize,
        leads: Option<usize>,
        emails: &mut HashMap<String, usize>,
        mobiles: &mut HashSet<String>,
    ) -> Person {
        let dept = &org.depts[primary];
        let division = &DIVISIONS[dept.division];
        let intl = leads.is_none() && self.chance(10);
        let name = if intl {
            self.intl_name()
        } else {
            self.chinese_name()
        };
        // zhang.wei, then zhang.wei2, zhang.wei3 …
        let seen = emails.entry(name.local.clone()).or_insert(0);
        *seen += 1;
        let local = match *seen {
            1 => name.local.clone(),
            n => format!("{}{n}", name.local),
        };
        let (city, mobile) = if intl {
            let (city, code, len) = self.choose(INTL_CITIES);
            (city, self.unique_mobile(mobiles, code, len))
        } else {
            let city = if self.chance(850) {
                dept.city
            } else {
                self.city()
            };
            let code = format!("+861{}", self.rng.u8(3..10));
            (city, self.unique_mobile(mobiles, &code, 9))
        };
        let job_title = match leads {
            Some(d) if org.depts[d].depth == 1 => division.head_title.to_string(),
            Some(d) => {
                let en = org.depts[d].seed.en_name.as_deref().unwrap_or_default();
                format!("{}负责人 Head of {en}", org.depts[d].seed.name)
            }
            None => self.choose(division.titles).to_string(),
        };
        // Leaders are active and joined in the first two thirds of the span; the CEO founded it.
        let day = match leads {
            Some(0) => 0,
            Some(_) => self.rng.i64(0..JOIN_DAYS * 2 / 3),
            None => self.rng.i64(0..JOIN_DAYS),
        };
        let status = match (leads, self.rng.u32(0..1000)) {
            (Some(_), _) => UserStatusSeed::Active,
            (None, 0..20) => UserStatusSeed::Resigned,
            (None, 20..25) => UserStatusSeed::Frozen,
            _ => UserStatusSeed::Active,
        };
        let mut departments = vec![dept.seed.open_department_id.clone()];
        if leads.is_none() && org.depts.len() > 1 && self.chance(30) {
            let other = loop {
                let d = self.rng.usize(0..org.depts.len());
                if d != primary {
                    break d;
                }
            };
            departments.push(org.depts[other].seed.open_department_id.clone());
        }
        let enterprise_email = self
            .chance(250)
            .then(|| format!("{local}@mail.{MAIL_DOMAIN}"));
        let user = UserSeed {
            open_id: self.id("ou_", 32),
            union_id: self.id("on_", 32),
            user_id: self.id("u", 6),
            name: name.name,
            en_name: Some(name.en_name),
            email: Some(format!("{local}@{MAIL_DOMAIN}")),
            enterprise_email,
            mobile: Some(mobile),
            departments,
            leader: None,
            job_title: Some(job_title),
            employee_no: None,
            status,
            gender: name.gender,
            city: Some(city.to_string()),
            is_tenant_manager: false,
            // 09:30 in China.
            join_time: JOIN_START + day * 86_400 + 5_400,
        };
        Person {
            user,
            primary,
            leads,
        }
    }

    fn unique_mobile(&mut self, taken: &mut HashSet<String>, prefix: &str, len: usize) -> String {
        loop {
            let m = format!("{prefix}{}", self.digits(len));
            if taken.insert(m.clone()) {
                return m;
            }
        }
    }

    fn chinese_name(&mut self) -> Name {
        let surname = self.weighted(SURNAMES);
        let gender = match self.rng.u32(0..100) {
            0 => 0,
            1..=52 => 1,
            _ => 2,
        };
        let female = gender == 2 || (gender == 0 && self.rng.bool());
        let given: String = if self.chance(400) {
            self.weighted(if female { FEMALE_COMMON } else { MALE_COMMON })
                .to_string()
        } else if female {
            format!(
                "{}{}",
                self.choose(FEMALE_FIRST),
                self.choose(FEMALE_SECOND)
            )
        } else {
            format!("{}{}", self.choose(MALE_FIRST), self.choose(MALE_SECOND))
        };
        let sur_py = romanize(surname);
        let given_py = romanize(&given);
        let en_given = match self.rng.u32(0..100) {
            0..15 => self
                .choose(if female { WESTERN_FEMALE } else { WESTERN_MALE })
                .to_string(),
            _ => capitalized(&given_py),
        };
        // Most write given name first, some keep the Chinese order (as the default seed).
        let en_name = if self.chance(250) && en_given == capitalized(&given_py) {
            format!("{} {en_given}", capitalized(&sur_py))
        } else {
            format!("{en_given} {}", capitalized(&sur_py))
        };
        Name {
            name: format!("{surname}{given}"),
            en_name,
            local: format!("{sur_py}.{given_py}"),
            gender,
        }
    }

    fn intl_name(&mut self) -> Name {
        let (given, gender) = self.choose(INTL_GIVEN);
        let family = self.choose(INTL_FAMILY);
        let full = format!("{given} {family}");
        Name {
            name: full.clone(),
            en_name: full,
            local: format!("{}.{}", given.to_lowercase(), family.to_lowercase()),
            gender,
        }
    }

    // ---- user groups ----------------------------------------------------------------------

    fn groups(&mut self, org: &Org) -> Vec<GroupSeed> {
        let mut groups = Vec::new();
        if org.people.is_empty() {
            return groups;
        }
        let active = |i: &usize| org.people[*i].user.status == UserStatusSeed::Active;
        let open_id = |i: usize| org.people[i].user.open_id.clone();
        let leaders: Vec<String> = org
            .depts
            .iter()
            .filter_map(|d| d.seed.leader.clone())
            .collect();
        groups.push(GroupSeed {
            id: self.id("g_", 12),
            name: "全体经理 All Managers".into(),
            description: "所有部门负责人 / every department head".into(),
            r#type: 1,
            member_users: leaders,
            member_departments: Vec::new(),
        });
        let top: Vec<String> = org
            .depts
            .iter()
            .filter(|d| d.depth == 1)
            .filter_map(|d| d.seed.leader.clone())
            .collect();
        groups.push(GroupSeed {
            id: self.id("g_", 12),
            name: "管理委员会 Executive Committee".into(),
            description: "各事业部负责人 / division heads".into(),
            r#type: 1,
            member_users: top,
            member_departments: Vec::new(),
        });
        // On-call: engineers of the R&D division when there is one.
        let engineers: Vec<usize> = org
            .depts
            .iter()
            .position(|d| d.depth == 1 && d.division == 1)
            .map(|d| org.subtree[d].iter().copied().filter(active).collect())
            .unwrap_or_default();
        let pool: Vec<usize> = if engineers.is_empty() {
            (0..org.people.len()).filter(active).collect()
        } else {
            engineers
        };
        let on_call = self.sample(&pool, 8);
        groups.push(GroupSeed {
            id: self.id("g_", 12),
            name: "On-call rotation".into(),
            description: "Primary and secondary on-call engineers for production".into(),
            r#type: 1,
            member_users: on_call.into_iter().map(open_id).collect(),
            member_departments: Vec::new(),
        });
        let mut newest: Vec<usize> = (0..org.people.len()).filter(active).collect();
        newest.sort_by_key(|i| (std::cmp::Reverse(org.people[*i].user.join_time), *i));
        newest.truncate(30);
        groups.push(GroupSeed {
            id: self.id("g_", 12),
            name: "新员工 New Joiners".into(),
            description: "最近入职的同事 / the latest hires".into(),
            r#type: 1,
            member_users: newest.into_iter().map(open_id).collect(),
            member_departments: Vec::new(),
        });
        // A dynamic group: whole second-level departments of the largest division.
        let units: Vec<String> = org
            .depts
            .iter()
            .filter(|d| d.depth == 2 && d.division == 1)
            .take(3)
            .map(|d| d.seed.open_department_id.clone())
            .collect();
        if !units.is_empty() {
            groups.push(GroupSeed {
                id: self.id("g_", 12),
                name: "技术委员会 Tech Council".into(),
                description: "动态用户组：研发中心三个部门全员 / everyone in three R&D departments"
                    .into(),
                r#type: 2,
                member_users: Vec::new(),
                member_departments: units,
            });
        }
        groups
    }

    /// Up to `k` distinct entries of `pool`, in drawn order.
    fn sample(&mut self, pool: &[usize], k: usize) -> Vec<usize> {
        let mut v = pool.to_vec();
        let k = k.min(v.len());
        for i in 0..k {
            let j = self.rng.usize(i..v.len());
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }

    // ---- chats ------------------------------------------------------------------------------

    fn chats(&mut self, org: &mut Org) -> Vec<ChatSeed> {
        let in_chats: Vec<usize> = (0..org.people.len())
            .filter(|i| org.people[*i].user.status != UserStatusSeed::Resigned)
            .collect();
        if in_chats.len() < 3 {
            return Vec::new();
        }
        let count = (org.people.len() / 5).clamp(1, MAX_CHATS);
        let mut chats = Vec::with_capacity(count);
        let mut names = HashMap::new();
        // Departments big enough for a department chat, largest first.
        let mut with_chat: Vec<usize> = (0..org.depts.len())
            .filter(|d| org.subtree[*d].len() >= 3)
            .collect();
        with_chat.sort_by_key(|d| {
            (
                org.depts[*d].depth,
                std::cmp::Reverse(org.subtree[*d].len()),
            )
        });
        with_chat.reverse();
        let divisions: Vec<usize> = (0..org.depts.len())
            .filter(|d| org.depts[*d].depth == 1 && org.subtree[*d].len() >= 3)
            .collect();
        // Weekly meetings are held by second-level departments (divisions in a flat org).
        let mut meeting: Vec<usize> = (0..org.depts.len())
            .filter(|d| org.depts[*d].depth == 2 && org.subtree[*d].len() >= 3)
            .collect();
        if meeting.is_empty() {
            meeting = divisions.clone();
        }
        for _ in 0..count {
            let kind = self.rng.u32(0..100);
            let chat = match kind {
                0..20 if !with_chat.is_empty() => {
                    let d = with_chat.pop().unwrap_or_default();
                    self.department_chat(org, d, &mut names)
                }
                20..35 if !meeting.is_empty() => {
                    let d = self.choose(&meeting);
                    let pool = org.subtree[d].clone();
                    let dept = &org.depts[d].seed;
                    let zh = format!("{}周会", dept.name);
                    let en = format!("{} weekly", dept.en_name.as_deref().unwrap_or_default());
                    let desc = "每周例会，议题与纪要 · weekly sync agenda and notes";
                    self.chat(org, &pool, &zh, &en, desc, &mut names)
                }
                35..88 => {
                    let (cn, en) = self.choose(CODENAMES);
                    let (tzh, ten) = self.choose(PROJECT_CHATS);
                    let pool = match divisions.is_empty() {
                        true => in_chats.clone(),
                        false => org.subtree[self.choose(&divisions)].clone(),
                    };
                    let zh = tzh.replace("{}", cn);
                    let en = ten.replace("{}", en);
                    self.chat(
                        org,
                        &pool,
                        &zh,
                        &en,
                        "项目沟通 · project channel",
                        &mut names,
                    )
                }
                _ => {
                    let (zh, en) = if self.chance(250) {
                        let (c, e, _) = self.choose(CITIES);
                        (format!("{c}办公室"), format!("{e} Office"))
                    } else {
                        let (z, e) = self.choose(SOCIAL_CHATS);
                        (z.to_string(), e.to_string())
                    };
                    self.chat(org, &in_chats, &zh, &en, "", &mut names)
                }
            };
            chats.push(chat);
        }
        chats
    }

    /// A department's own chat: its leader and up to 50 of its people, linked from the department.
    fn department_chat(
        &mut self,
        org: &mut Org,
        d: usize,
        names: &mut HashMap<String, usize>,
    ) -> ChatSeed {
        let pool = org.subtree[d].clone();
        let (zh, en) = {
            let s = &org.depts[d].seed;
            (s.name.clone(), s.en_name.clone().unwrap_or_default())
        };
        let leader = org.depts[d].seed.leader.clone();
        let mut members: Vec<String> = Vec::new();
        if let Some(l) = &leader {
            members.push(l.clone());
        }
        for i in self.sample(&pool, CHAT_MAX_MEMBERS) {
            let id = &org.people[i].user.open_id;
            if members.len() < CHAT_MAX_MEMBERS && !members.contains(id) {
                members.push(id.clone());
            }
        }
        let chat = ChatSeed {
            chat_id: self.id("oc_", 32),
            name: unique_chat_name(names, &format!("{zh} {en}")),
            description: format!("{zh}部门群 · department chat"),
            owner: members.first().cloned().unwrap_or_default(),
            chat_type: "private".into(),
            chat_mode: "group".into(),
            bot_member: !self.chance(100),
            members,
            created_ago_secs: self.rng.i64(86_400..3 * 365 * 86_400),
        };
        org.depts[d].seed.chat_id = Some(chat.chat_id.clone());
        chat
    }

    /// A chat of 3 to 50 people drawn from `pool` (topped up from everyone if it is smaller).
    fn chat(
        &mut self,
        org: &Org,
        pool: &[usize],
        zh: &str,
        en: &str,
        description: &str,
        names: &mut HashMap<String, usize>,
    ) -> ChatSeed {
        // Small chats are the common case: the product of two uniform draws skews low.
        let want = 3 + self.rng.usize(0..48) * self.rng.usize(0..48) / 47;
        let mut picked = self.sample(pool, want);
        if picked.len() < 3 {
            let everyone: Vec<usize> = (0..org.people.len())
                .filter(|i| {
                    org.people[*i].user.status != UserStatusSeed::Resigned && !picked.contains(i)
                })
                .collect();
            let more = self.sample(&everyone, 3 - picked.len());
            picked.extend(more);
        }
        let members: Vec<String> = picked
            .iter()
            .map(|i| org.people[*i].user.open_id.clone())
            .collect();
        let public = self.chance(250);
        ChatSeed {
            chat_id: self.id("oc_", 32),
            name: unique_chat_name(names, &format!("{zh} {en}")),
            description: description.to_string(),
            owner: members.first().cloned().unwrap_or_default(),
            chat_type: if public { "public" } else { "private" }.into(),
            chat_mode: "group".into(),
            bot_member: !self.chance(150),
            members,
            created_ago_secs: self.rng.i64(86_400..3 * 365 * 86_400),
        }
    }
}

struct Name {
    name: String,
    en_name: String,
    /// The mail local part before de-duplication: `zhang.wei`.
    local: String,
    gender: i64,
}

/// Department names made unique across the org: 后端组, 后端二组, 后端三组 …
#[derive(Default)]
struct Names {
    used: HashMap<String, usize>,
}

impl Names {
    fn unique(&mut self, zh: &str, en: &str) -> (String, String) {
        let n = self.used.entry(zh.to_string()).or_insert(0);
        *n += 1;
        match *n {
            1 => (zh.to_string(), en.to_string()),
            n => (numbered_zh(zh, n), format!("{en} {n}")),
        }
    }
}

fn unique_chat_name(used: &mut HashMap<String, usize>, name: &str) -> String {
    let n = used.entry(name.to_string()).or_insert(0);
    *n += 1;
    match *n {
        1 => name.to_string(),
        n => format!("{name} {n}"),
    }
}

/// 后端组 → 后端二组, 平台工程部 → 平台工程二部, 设计中心 → 第二设计中心.
fn numbered_zh(base: &str, n: usize) -> String {
    let num = cn_number(n);
    for tail in ['组', '部'] {
        if let Some(stem) = base.strip_suffix(tail) {
            return format!("{stem}{num}{tail}");
        }
    }
    if base.ends_with("中心") {
        return format!("第{num}{base}");
    }
    format!("{base}（{num}）")
}

fn cn_number(n: usize) -> String {
    const D: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => D[n].to_string(),
        10 => "十".to_string(),
        11..=19 => format!("十{}", D[n - 10]),
        20..=99 if n.is_multiple_of(10) => format!("{}十", D[n / 10]),
        20..=99 => format!("{}十{}", D[n / 10], D[n % 10]),
        _ => n.to_string(),
    }
}

fn pinyin(c: char) -> Option<&'static str> {
    PINYIN.iter().find(|(k, _)| *k == c).map(|(_, p)| *p)
}

/// Toneless pinyin of a name from the table, syllables joined: 志远 → zhiyuan.
fn romanize(s: &str) -> String {
    s.chars().map(|c| pinyin(c).unwrap_or("x")).collect()
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// `total` split in proportion to `weights` (largest remainder, ties to the first).
fn split(total: usize, weights: &[u64]) -> Vec<usize> {
    let sum: u64 = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let total = total as u64;
    let mut parts: Vec<u64> = weights.iter().map(|w| total * w / sum).collect();
    let mut rest = total - parts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(total * weights[*i] % sum));
    for i in order.into_iter().cycle() {
        if rest == 0 {
            break;
        }
        parts[i] += 1;
        rest -= 1;
    }
    parts.into_iter().map(|p| p as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// The 10,000-person org most tests look at, generated once.
    fn big() -> &'static Seed {
        static SEED: OnceLock<Seed> = OnceLock::new();
        SEED.get_or_init(|| generate(10_000, 300, 1))
    }

    #[test]
    fn same_arguments_give_identical_json_and_another_seed_differs() {
        let a = serde_json::to_string(&generate(2_000, 80, 7)).expect("json");
        let b = serde_json::to_string(&generate(2_000, 80, 7)).expect("json");
        let c = serde_json::to_string(&generate(2_000, 80, 8)).expect("json");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let big_a = serde_json::to_string(big()).expect("json");
        let big_b = serde_json::to_string(&generate(10_000, 300, 1)).expect("json");
        assert!(big_a == big_b, "the 10,000-person org is not reproducible");
    }

    #[test]
    fn counts_are_as_asked() {
        let s = big();
        assert_eq!(s.users.len(), 10_000);
        assert_eq!(s.departments.len(), 300);
        assert_eq!(s.chats.len(), MAX_CHATS);
        assert!(s.messages.is_empty());
        for (p, d) in [(0, 5), (1, 1), (5, 1), (3, 20), (50, 14), (700, 40)] {
            let small = generate(p, d, 3);
            assert_eq!((small.users.len(), small.departments.len()), (p, d));
            Seed::from_json(&serde_json::to_string(&small).expect("json"))
                .unwrap_or_else(|e| panic!("{p}/{d}: {e}"));
        }
        assert_eq!(generate(10, 0, 1).departments.len(), 1);
    }

    #[test]
    fn the_tree_has_divisions_and_two_to_four_levels_below_them() {
        let s = big();
        let by_id: HashMap<&str, &DepartmentSeed> = s
            .departments
            .iter()
            .map(|d| (d.open_department_id.as_str(), d))
            .collect();
        let depth = |d: &DepartmentSeed| {
            let mut n = 1;
            let mut cur = d;
            while let Some(p) = by_id.get(cur.parent.as_str()) {
                n += 1;
                cur = p;
            }
            n
        };
        let top = s.departments.iter().filter(|d| d.parent == "0").count();
        assert!((5..=10).contains(&top), "{top} divisions");
        let deepest = s.departments.iter().map(depth).max().unwrap_or(0);
        assert!((3..=5).contains(&deepest), "depth {deepest}");
        let names: HashSet<&str> = s.departments.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names.len(), s.departments.len(), "department names repeat");
        assert!(
            s.departments
                .iter()
                .all(|d| d.open_department_id.starts_with("od-")
                    && d.open_department_id.len() == 35
                    && d.en_name.is_some())
        );
        // Some departments are much bigger than others.
        let mut sizes: HashMap<&str, usize> = HashMap::new();
        for u in &s.users {
            *sizes.entry(u.departments[0].as_str()).or_default() += 1;
        }
        let max = sizes.values().max().copied().unwrap_or(0);
        let min = sizes.values().min().copied().unwrap_or(0);
        assert!(max >= 100 && min <= 5, "sizes {min}..{max}");
    }

    #[test]
    fn every_user_is_in_existing_departments_never_the_root() {
        let s = big();
        let depts: HashSet<&str> = s
            .departments
            .iter()
            .map(|d| d.open_department_id.as_str())
            .collect();
        let users: HashSet<&str> = s.users.iter().map(|u| u.open_id.as_str()).collect();
        for u in &s.users {
            assert!(!u.departments.is_empty());
            for d in &u.departments {
                assert!(depts.contains(d.as_str()), "{} in {d}", u.open_id);
            }
            if let Some(l) = &u.leader {
                assert!(users.contains(l.as_str()) && l != &u.open_id);
            }
        }
        for d in &s.departments {
            if let Some(l) = &d.leader {
                assert!(users.contains(l.as_str()));
            }
        }
        for g in &s.groups {
            assert!(g.member_users.iter().all(|m| users.contains(m.as_str())));
            assert!(
                g.member_departments
                    .iter()
                    .all(|d| depts.contains(d.as_str()))
            );
        }
    }

    #[test]
    fn ids_emails_and_mobiles_are_unique_and_well_formed() {
        let s = big();
        let n = s.users.len();
        let set = |f: fn(&UserSeed) -> Option<&str>| -> usize {
            s.users.iter().filter_map(f).collect::<HashSet<_>>().len()
        };
        assert_eq!(set(|u| Some(&u.open_id)), n);
        assert_eq!(set(|u| Some(&u.union_id)), n);
        assert_eq!(set(|u| Some(&u.user_id)), n);
        assert_eq!(set(|u| u.email.as_deref()), n);
        assert_eq!(set(|u| u.mobile.as_deref()), n);
        assert_eq!(set(|u| u.employee_no.as_deref()), n);
        for u in &s.users {
            assert!(u.open_id.starts_with("ou_") && u.open_id.len() == 35);
            assert!(u.union_id.starts_with("on_") && u.union_id.len() == 35);
            assert!(u.user_id.starts_with('u') && u.user_id.len() == 7);
            let email = u.email.as_deref().unwrap_or_default();
            let (local, domain) = email.split_once('@').unwrap_or_default();
            assert_eq!(domain, MAIL_DOMAIN);
            assert!(
                local
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'),
                "{email}"
            );
            assert!(u.job_title.is_some() && u.city.is_some() && u.join_time > 0);
        }
        let zw: Vec<&str> = s
            .users
            .iter()
            .filter(|u| u.name == "张伟")
            .filter_map(|u| u.email.as_deref())
            .collect();
        assert!(zw.contains(&"zhang.wei@northwind.example"), "{zw:?}");
        assert!(zw.contains(&"zhang.wei2@northwind.example"), "{zw:?}");
    }

    #[test]
    fn common_names_repeat() {
        let s = big();
        let count = |name: &str| s.users.iter().filter(|u| u.name == name).count();
        assert!(count("张伟") >= 3, "张伟 ×{}", count("张伟"));
        assert!(count("王芳") >= 3, "王芳 ×{}", count("王芳"));
        let wang = s.users.iter().filter(|u| u.name.starts_with('王')).count();
        let kong = s.users.iter().filter(|u| u.name.starts_with('孔')).count();
        assert!(wang > 10 * kong, "王 {wang}, 孔 {kong}");
        assert!(s.users.iter().any(|u| u.name.chars().count() == 2));
        assert!(s.users.iter().any(|u| u.name.chars().count() == 3));
        assert!(
            s.users.iter().any(|u| u.name.is_ascii()),
            "no international staff"
        );
    }

    #[test]
    fn statuses_and_tenant_managers() {
        let s = big();
        let share = |st| s.users.iter().filter(|u| u.status == st).count() as f64 / 10_000.0;
        let resigned = share(UserStatusSeed::Resigned);
        let frozen = share(UserStatusSeed::Frozen);
        assert!((0.01..=0.03).contains(&resigned), "resigned {resigned}");
        assert!((0.002..=0.01).contains(&frozen), "frozen {frozen}");
        assert!(share(UserStatusSeed::Active) > 0.96);
        let managers: Vec<&UserSeed> = s.users.iter().filter(|u| u.is_tenant_manager).collect();
        assert!((1..=2).contains(&managers.len()));
        assert!(managers.iter().all(|u| u.status == UserStatusSeed::Active));
    }

    #[test]
    fn chats_have_three_to_fifty_members_with_the_owner_among_them() {
        let s = big();
        let users: HashSet<&str> = s.users.iter().map(|u| u.open_id.as_str()).collect();
        for c in &s.chats {
            assert!(
                (3..=50).contains(&c.members.len()),
                "{}: {}",
                c.name,
                c.members.len()
            );
            assert!(c.members.contains(&c.owner), "{}", c.name);
            let distinct: HashSet<&String> = c.members.iter().collect();
            assert_eq!(distinct.len(), c.members.len());
            assert!(c.members.iter().all(|m| users.contains(m.as_str())));
        }
        assert!(s.chats.iter().any(|c| !c.bot_member));
        assert!(s.chats.iter().any(|c| c.chat_type == "public"));
        let names: HashSet<&str> = s.chats.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), s.chats.len());
        let chat_ids: HashSet<&str> = s.chats.iter().map(|c| c.chat_id.as_str()).collect();
        for d in &s.departments {
            if let Some(c) = &d.chat_id {
                assert!(chat_ids.contains(c.as_str()));
            }
        }
    }

    #[test]
    fn the_app_is_the_default_seeds_and_sees_everyone() {
        let s = big();
        let default = Seed::default_org().expect("default seed");
        assert_eq!(s.app.app_id, default.app.app_id);
        assert_eq!(s.app.app_secret, default.app.app_secret);
        assert_eq!(s.scopes.len(), default.scopes.len());
        assert!(s.contact_range.all);
    }

    #[test]
    fn the_json_loads_as_a_seed_and_builds_a_world() {
        let text = serde_json::to_string_pretty(big()).expect("json");
        let seed = Seed::from_json(&text).expect("the generated seed passes the loader");
        let world = crate::sandbox::world::World::new(seed);
        assert_eq!(world.users.len(), 10_000);
        assert_eq!(world.departments.len(), 300);
        assert_eq!(world.chats.len(), MAX_CHATS);
        let u = &world.users[1234];
        assert!(world.user_in_range(u));
        assert!(
            u.departments
                .iter()
                .all(|d| world.department(d).is_some() && world.department_in_range(d))
        );
    }

    #[test]
    fn every_name_character_has_pinyin() {
        let all = SURNAMES
            .iter()
            .map(|(s, _)| *s)
            .chain(MALE_COMMON.iter().map(|(s, _)| *s))
            .chain(FEMALE_COMMON.iter().map(|(s, _)| *s))
            .chain(MALE_FIRST.iter().copied())
            .chain(MALE_SECOND.iter().copied())
            .chain(FEMALE_FIRST.iter().copied())
            .chain(FEMALE_SECOND.iter().copied());
        for s in all {
            for c in s.chars() {
                assert!(pinyin(c).is_some(), "no pinyin for {c}");
            }
        }
        assert_eq!(romanize("欧阳"), "ouyang");
        assert_eq!(romanize("秀英"), "xiuying");
    }

    #[test]
    fn numbering_and_splitting() {
        assert_eq!(numbered_zh("后端组", 2), "后端二组");
        assert_eq!(numbered_zh("平台工程部", 12), "平台工程十二部");
        assert_eq!(numbered_zh("设计中心", 3), "第三设计中心");
        assert_eq!(cn_number(40), "四十");
        assert_eq!(cn_number(47), "四十七");
        assert_eq!(split(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split(0, &[2, 5]), vec![0, 0]);
        assert_eq!(split(7, &[0, 0]), vec![0, 0]);
    }
}
